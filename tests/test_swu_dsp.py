"""The sliding-window unit's addresses need no multiplier: Yosys maps it without a DSP.

The image below is wide enough (22 pixels, a 9-bit row offset) for Yosys to put a
``row * width`` multiply on a DSP48; the unit computes its addresses by additions alone."""

import pytest
from amaranth.back import verilog

from hdlgen.build.synth import synthesize
from hdlgen.rtl.swu import SlidingWindow


@pytest.mark.synth
def test_sliding_window_maps_to_no_dsp(tmp_path):
    dut = SlidingWindow(24, 22, 1, 1, 3, 1, 1, 0)
    (tmp_path / "swu.v").write_text(verilog.convert(dut, name="swu", emit_src=False))
    result = synthesize(tmp_path, ["swu.v"], "swu", "xc7", quiet=True)
    assert result.dsp == 0, result.cells
    assert not any(kind.startswith("DSP") for kind in result.cells)
    assert result.lut > 0 and result.ff > 0 and not result.unmapped
