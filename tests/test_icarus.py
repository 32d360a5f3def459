"""The emitted Verilog of the small shipped models under a second simulator, Icarus Verilog,
with its own plain-Verilog testbench (no cocotb): outputs equal the golden model's, with and
without random stalls, and the steady-state cycles per image equal the cycle model's."""

import numpy as np
import pytest
from flow_helpers import core_with_flipped_bit, flip_that_matters

from hdlgen.build.design import make_design, write_core
from hdlgen.fold import predict
from hdlgen.golden import classify
from hdlgen.model import load_graph
from hdlgen.sim.icarus import beat_lines, find_icarus, run_icarus

N_IMAGES = 6   # Icarus interprets the core event by event: a few images take a minute

needs_icarus = pytest.mark.skipif(find_icarus() is None, reason="Icarus Verilog (iverilog) is not installed; "
                                  "make install sets it up on Debian (apt-get install iverilog)")


def test_beat_lines_put_lane_zero_in_the_low_byte():
    images = np.array([[[[1, 2, 3]], [[4, 5, 6]]]], dtype=np.uint8)   # 1 x 2 x 1 x 3
    assert beat_lines(images, 3) == ["030201", "060504"]
    assert beat_lines(images, 1) == ["01", "02", "03", "04", "05", "06"]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    loaded = load_graph("mlp-fashion")
    design = make_design(loaded.graph, loaded.name)
    rtl = tmp_path_factory.mktemp("icarus") / "rtl"
    write_core(design, rtl)
    samples = loaded.samples[0]
    # images whose label one weight bit can change come first, for the negative control
    _, _, flipped = flip_that_matters(design, samples)
    changed = np.nonzero(flipped != classify(loaded.graph, samples))[0][:2]
    x = np.concatenate([samples[changed], samples[:N_IMAGES - len(changed)]])
    return design, rtl, x, classify(loaded.graph, x)


@needs_icarus
@pytest.mark.parametrize("stalls", [0, 30])
def test_mlp_under_icarus_equals_golden(mlp, stalls):
    design, rtl, x, golden = mlp
    result = run_icarus(rtl, x, design.folding.in_lanes, 8, stall_in=stalls, stall_out=stalls, seed=3)
    assert not result.hung and result.tlast_missing == 0
    assert result.outputs.tolist() == golden.tolist()
    if not stalls:
        assert result.cycles_per_image() == predict(design.plan, design.folding)["cycles_per_image"]


@needs_icarus
def test_icarus_sees_a_flipped_weight_bit(mlp, tmp_path):
    """Negative control: the same bench on a core with one weight bit flipped gives exactly
    the flipped network's labels."""
    design, rtl, x, golden = mlp
    flipped_labels = core_with_flipped_bit(design, x, rtl, tmp_path / "rtl")
    assert flipped_labels.tolist() != golden.tolist()
    flipped = run_icarus(tmp_path / "rtl", x, design.folding.in_lanes, 8)
    assert flipped.outputs.tolist() == flipped_labels.tolist()


@needs_icarus
@pytest.mark.parametrize("width", [2, 3, 7, 8, 33, 64, 100])
def test_popcount_module_counts_bits(width, tmp_path):
    import subprocess

    from hdlgen.rtl import POPCOUNT_VERILOG

    rng = np.random.default_rng(width)
    words = [0, (1 << width) - 1] + [int(v) for v in rng.integers(0, 2, (40, width)) @ (1 << np.arange(width, dtype=object))]
    out = int(np.ceil(np.log2(width + 1)))
    checks = "\n".join(f"    v = {width}'h{w:x}; #1 if (c !== {bin(w).count('1')}) $display(\"bad {w:x} %0d\", c);"
                       for w in words)
    (tmp_path / "tb.v").write_text(f"""module tb;
  reg [{width - 1}:0] v; wire [{out - 1}:0] c;
  hdlgen_popcount #(.WIDTH({width}), .OUT({out})) dut (.in(v), .count(c));
  initial begin
{checks}
    $display("done");
  end
endmodule
""")
    (tmp_path / "lib.v").write_text(POPCOUNT_VERILOG)
    iverilog, vvp = find_icarus()
    subprocess.run([iverilog, "-g2012", "-o", "tb.vvp", "tb.v", "lib.v"], cwd=tmp_path, check=True)
    text = subprocess.run([vvp, "-n", "tb.vvp"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "done" in text and "bad" not in text, text
