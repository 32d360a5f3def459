"""The compiled stream harness on a shipped model (mlp-fashion): every output as the golden
model's, cycle numbers identical to the cocotb bench's with and without stalls, a flipped
weight bit caught, sharded runs giving the outputs of one process, and the ``sim`` command
on top of it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hdlgen.build.design import CORE_NAME, make_design, write_core
from hdlgen.golden import classify
from hdlgen.model import load_graph
from hdlgen.sim import build_model
from hdlgen.sim.harness import build_harness
from hdlgen.sim.shards import run_sharded
from flow_helpers import core_with_flipped_bit

pytestmark = pytest.mark.verilator

MODEL = "mlp-fashion"
N_IMAGES = 64


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    loaded = load_graph(MODEL)
    work = tmp_path_factory.mktemp("harness")
    design = make_design(loaded.graph, loaded.name)
    sources = write_core(design, work / "rtl")
    x = loaded.samples[0][:N_IMAGES]
    return design, work / "rtl", sources, x, classify(design.graph, x)


@pytest.fixture(scope="module")
def harness(case, tmp_path_factory):
    _, _, sources, _, _ = case
    return build_harness(sources, CORE_NAME, tmp_path_factory.mktemp("harness_build"), progress=False)


@pytest.fixture(scope="module")
def cocotb_model(case, tmp_path_factory):
    _, _, sources, _, _ = case
    return build_model(sources, CORE_NAME, tmp_path_factory.mktemp("cocotb_build"), progress=False)


def _same_run(a, b):
    assert a.outputs.tolist() == b.outputs.tolist()
    assert a.t_out.tolist() == b.t_out.tolist()
    assert a.t_in_first.tolist() == b.t_in_first.tolist()
    assert a.t_in_last.tolist() == b.t_in_last.tolist()
    assert (a.cycles, a.beats_sent, a.extra_outputs) == (b.cycles, b.beats_sent, b.extra_outputs)


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_harness_agrees_with_golden_and_cocotb(case, harness, cocotb_model, stall):
    design, rtl, _, x, golden = case
    n = 16 if stall == 0.0 else N_IMAGES
    kw = dict(lanes=design.folding.in_lanes, work_dir=rtl, stall_in=stall, stall_out=stall, seed=5, progress=False)
    fast = harness.run(x[:n], golden[:n], **kw)
    slow = cocotb_model.run(x[:n], golden[:n], **kw)
    assert fast.passed, fast.summary()
    _same_run(fast, slow)
    if stall == 0.0:
        assert fast.cycles_per_image == design.prediction["cycles_per_image"]
        assert fast.latency_cycles == slow.latency_cycles == design.prediction["latency_cycles"]


def test_harness_catches_one_flipped_weight_bit(case, harness, tmp_path):
    design, rtl, _, x, golden = case
    flipped_labels = core_with_flipped_bit(design, x, rtl, tmp_path / "rtl")
    result = harness.run(x, golden, lanes=design.folding.in_lanes, work_dir=tmp_path / "rtl", stall_in=0.2,
                         stall_out=0.2, seed=9, progress=False)
    assert result.completed and not result.passed
    assert set(result.mismatches) == set(np.nonzero(flipped_labels != golden)[0].tolist())
    assert result.outputs.tolist() == flipped_labels.tolist()


def test_shards_give_the_outputs_of_one_process(case, harness):
    design, rtl, _, x, golden = case
    kw = dict(lanes=design.folding.in_lanes, work_dir=rtl, stall_in=0.3, stall_out=0.3, seed=2, progress=False)
    one = run_sharded(harness, x, golden, jobs=1, **kw)
    three = run_sharded(harness, x, golden, jobs=3, **kw)
    assert [(a, r.n_images) for a, r in three.shards] == [(0, 22), (22, 21), (43, 21)]
    assert one.passed and three.passed
    assert three.outputs.tolist() == one.outputs.tolist() == golden.tolist()
    wrong = golden.copy()
    wrong[[5, 50]] ^= 1
    bad = run_sharded(harness, x, wrong, jobs=3, **kw)
    assert not bad.passed and bad.mismatches == (5, 50)
    assert three.compared(wrong).mismatches == (5, 50) and not three.compared(wrong).passed


def _hdlgen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hdlgen", *args], capture_output=True, text=True, cwd=cwd)


def test_sim_command_shards_all_images(tmp_path):
    n = len(load_graph(MODEL).samples[0])
    r = _hdlgen("sim", "--model", MODEL, "--images", "all", "--jobs", "2", "--json", "--work", str(tmp_path / "w"),
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["images"] == n and out["all_matched"] and out["bench"] == "harness"
    for run in out["runs"].values():
        assert run["matched"] == n and run["processes"] == 2 and run["passed"]
    assert out["cycles_per_image"] == out["predicted_cycles_per_image"]
    assert out["latency_cycles"] == out["predicted_latency_cycles"]
    assert out["timing_measured_on"]["first_image"] == 0
    assert out["timing_measured_on"]["images"] == (n + 1) // 2
