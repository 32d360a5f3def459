"""Flow tier for residual networks: the ResNet-14 topology (stem, three stages of two basic
blocks with identity and 1x1 strided projection shortcuts, global pooling, FC, argmax) on
32x32 RGB images as emitted Verilog under Verilator, bit-exact against the golden model with
random stalls, and its measured cycles per image equal to the cycle model's.

Simulation time grows with the multiply-accumulates per image, so CI runs the topology at a
quarter of the width (stage widths 16/32/64, random weights: every engine kind, layer and
shortcut of the real network, 1/16 of its work). The shipped full-width resnet14-cifar10 is
simulated on 1,000 CIFAR-10 test images by ``make bench`` (see the README)."""

import numpy as np
import pytest

from hdlgen.build.design import CORE_NAME, make_design, write_core
from hdlgen.fuzz import random_resnet
from hdlgen.golden import classify

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

N_IMAGES = 4


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(14)
    g = random_resnet(rng, widths=(16, 32, 64), name="resnet14-quarter")
    return g, rng.integers(0, 256, (N_IMAGES, 32, 32, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def verilated(network, tmp_path_factory):
    import boards
    from hdlgen.sim.runner import build_model

    graph, _ = network
    work = tmp_path_factory.mktemp("flow_resnet")
    design = make_design(graph, graph.name, board=boards.get("kc705"))
    sources = write_core(design, work / "rtl")
    return design, work / "rtl", build_model(sources, CORE_NAME, work / "verilator", progress=False)


def test_design_is_the_residual_dataflow(verilated):
    design, _, _ = verilated
    kinds = [e.kind for e in design.plan.engines]
    assert kinds.count("mvau") == 1 + 12 + 2 + 1          # stem, 6 blocks x 2, 2 projections, FC
    assert kinds.count("select") == 6 and kinds.count("delay") == 6 and kinds.count("fork") == 6
    assert kinds.count("decimate") == 2 and kinds.count("globalsum") == 1 and kinds[-1] == "argmax"
    assert design.prediction["cycles_per_image"] == 32 * 32 * 9   # the 3x3 windows of a 32x32 image


def test_whole_network_bit_exact_with_stalls(network, verilated):
    design, rtl, model = verilated
    _, x = network
    golden = classify(design.graph, x)
    timing = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl, progress=False,
                       timeout_cycles=1_000_000)
    assert timing.passed, timing.summary()
    assert timing.cycles_per_image == design.prediction["cycles_per_image"]
    stalled = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl, stall_in=0.3, stall_out=0.3,
                        seed=5, progress=False, timeout_cycles=2_000_000)
    assert stalled.passed, stalled.summary()
    assert stalled.n_out == N_IMAGES
