"""Flow tier for convolutional networks: the shipped cnv-cifar10 (binarized CNV, CIFAR-10) as
emitted Verilog under Verilator, bit-exact against the golden model on shipped test images
with random stalls, and its measured cycles per image equal to the cycle model's."""

import numpy as np
import pytest

from hdlgen.build.design import CORE_NAME, make_design, write_core
from hdlgen.golden import classify
from hdlgen.model import load_graph, shipped_models

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

MODEL = "cnv-cifar10"
N_IMAGES = 8


@pytest.fixture(scope="module")
def shipped():
    if MODEL not in shipped_models():
        pytest.skip(f"{MODEL} is not shipped")
    loaded = load_graph(MODEL)
    assert loaded.samples is not None and len(loaded.samples[0]) >= N_IMAGES
    return loaded


@pytest.fixture(scope="module")
def verilated(shipped, tmp_path_factory):
    from hdlgen.sim.runner import build_model

    work = tmp_path_factory.mktemp("flow_cnn")
    design = make_design(shipped.graph, shipped.name)
    sources = write_core(design, work / "rtl")
    return design, work / "rtl", build_model(sources, CORE_NAME, work / "verilator", progress=False)


def test_design_is_a_streaming_cnn(shipped, verilated):
    design, _, _ = verilated
    kinds = [e.kind for e in design.plan.engines]
    assert kinds.count("swu") == 6 and kinds.count("maxpool") == 2 and kinds[-1] == "argmax"
    assert design.graph.input_type.shape == (32, 32, 3)
    # the first sliding window (30x30 windows of 3x3 pixels) sets the pace
    assert design.prediction["cycles_per_image"] == 30 * 30 * 9
    assert design.prediction["bottleneck"] == "conv0_swu"


def test_shipped_images_bit_exact_with_stalls(shipped, verilated):
    design, rtl, model = verilated
    x, y = shipped.samples[0][:N_IMAGES], shipped.samples[1][:N_IMAGES]
    golden = classify(design.graph, x)
    timing = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl, progress=False)
    assert timing.passed, timing.summary()
    assert timing.cycles_per_image == design.prediction["cycles_per_image"]
    stalled = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl, stall_in=0.3, stall_out=0.3,
                        seed=7, progress=False)
    assert stalled.passed, stalled.summary()
    assert stalled.n_out == N_IMAGES
    assert (golden == y).mean() >= 0.5
