"""Build outputs go in place whole or not at all (hdlgen.build.outdir)."""

import subprocess
import sys

import numpy as np
import pytest

from hdlgen.build.outdir import MARKER, staged_output
from hdlgen.errors import HdlgenError
from hdlgen.fuzz import random_graph


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _build_into(work, names):
    for n in names:
        (work / n).parent.mkdir(parents=True, exist_ok=True)
        (work / n).write_text(n)


def test_fresh_folder_appears_only_at_the_end(tmp_path):
    out = tmp_path / "out"
    with staged_output(out, force=False) as work:
        _build_into(work, ["rtl/a.v"])
        assert not out.exists()
    assert _files(out) == [MARKER, "rtl/a.v"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_earlier_build_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    with staged_output(out, force=False) as work:
        _build_into(work, ["rtl/fc3_weights.mem", "report.md"])
    with staged_output(out, force=False) as work:
        _build_into(work, ["rtl/conv0_weights.mem", "report.md"])
    assert _files(out) == [MARKER, "report.md", "rtl/conv0_weights.mem"]


def test_failure_leaves_the_earlier_build_and_no_temporary_folder(tmp_path):
    out = tmp_path / "out"
    with staged_output(out, force=False) as work:
        _build_into(work, ["rtl/a.v"])
    before = {p: (out / p).read_bytes() for p in _files(out)}
    with pytest.raises(RuntimeError):
        with staged_output(out, force=False) as work:
            _build_into(work, ["rtl/b.v"])
            raise RuntimeError("synthesis failed")
    assert {p: (out / p).read_bytes() for p in _files(out)} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_forced_build_keeps_the_users_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    (out / "rtl").mkdir()
    (out / "rtl" / "stale.v").write_text("old")
    with pytest.raises(HdlgenError, match="--force"):
        with staged_output(out, force=False):
            pass
    with staged_output(out, force=True) as work:
        _build_into(work, ["rtl/a.v"])
    assert _files(out) == [MARKER, "rtl/a.v", "thesis.tex"]
    assert (out / "thesis.tex").read_text() == "mine"


def test_another_model_leaves_none_of_the_first_models_files(tmp_path):
    out = tmp_path / "out"

    def build(name, hidden):
        g = random_graph(np.random.default_rng(1), shape=(4, 3, 1), hidden=hidden, classes=5)
        g.meta["dataset"] = "fashion-mnist"
        g.name = name
        g.save(tmp_path / name)
        r = subprocess.run([sys.executable, "-m", "hdlgen", "build", "--board", "kc705", "--no-synth", "--model",
                            str(tmp_path / f"{name}.json"), "--out", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return {p for p in _files(out) if p.endswith(".mem")}

    first = build("three", (12, 8, 6))
    second = build("two", (10,))
    assert first - second and not (first - second) & set(_files(out))
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name or ".old-" in p.name]
