"""Board self-test wrapper (Amaranth simulator) and the Vivado project files."""

import random
import re

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

import boards
from hdlgen.build.clocking import ClockedWrapper, pack_images
from hdlgen.build.vivado import (BUILD_TCL, OOC_TCL, BoardTop, elaborate_board_top,
                                 write_vivado_project)
from hdlgen.errors import HdlgenError


class SumMod10(wiring.Component):
    """Fake accelerator: class = (sum of the image's bytes) mod 10, one result beat per image.
    Stalls its input every other cycle so the wrapper sees back-pressure."""

    def __init__(self, beat_bytes=2, out_width=8):
        self.beat_bytes = beat_bytes
        super().__init__({
            "s_axis_tdata": In(8 * beat_bytes), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(out_width), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        total = Signal(16)
        stall = Signal()
        m.d.sync += stall.eq(~stall)
        m.d.comb += self.s_axis_tready.eq(~stall & (~self.m_axis_tvalid | self.m_axis_tready))
        beat_sum = sum(self.s_axis_tdata.word_select(i, 8) for i in range(self.beat_bytes))
        with m.If(self.m_axis_tready):
            m.d.sync += self.m_axis_tvalid.eq(0)
        with m.If(self.s_axis_tvalid & self.s_axis_tready):
            with m.If(self.s_axis_tlast):
                m.d.sync += [self.m_axis_tdata.eq((total + beat_sum) % 10),
                             self.m_axis_tvalid.eq(1), self.m_axis_tlast.eq(1), total.eq(0)]
            with m.Else():
                m.d.sync += total.eq(total + beat_sum)
        return m


def _images(count=3, length=7, seed=0):
    rng = random.Random(seed)
    images = [[rng.randrange(256) for _ in range(length)] for _ in range(count)]
    return images, [sum(image) % 10 for image in images]


def _decode_uart(samples, divisor):
    """8N1 bytes from per-cycle samples of a line that idles high."""
    out, index = [], 0
    while index < len(samples):
        if samples[index] == 0:
            middle = index + divisor // 2
            if middle + 9 * divisor >= len(samples):
                break
            bits = [samples[middle + (bit + 1) * divisor] for bit in range(8)]
            assert samples[middle + 9 * divisor] == 1, "missing stop bit"
            out.append(sum(bit << position for position, bit in enumerate(bits)))
            index = middle + 9 * divisor
        else:
            index += 1
    return bytes(out)


def _simulate(labels, images, cycles=700, beat_bytes=2):
    core = SumMod10(beat_bytes)
    wrapper = ClockedWrapper(core, boards.get("kc705"), 1.0, images=images, labels=labels,
                             use_mmcm=False, uart_baud=250_000, heartbeat_log2=3)
    assert wrapper.uart_divisor == 4
    sim = Simulator(wrapper)
    sim.add_clock(1e-6)
    trace = {"uart": [], "leds": []}
    final = {}

    async def bench(ctx):
        for _ in range(cycles):
            await ctx.tick()
            trace["uart"].append(ctx.get(wrapper.uart_tx))
            trace["leds"].append(ctx.get(wrapper.leds))
        for name in ("results", "mismatches", "rounds", "fail", "passing"):
            final[name] = ctx.get(getattr(wrapper, name))

    sim.add_testbench(bench)
    sim.run()
    return wrapper, trace, final


def test_self_test_passes():
    images, labels = _images()
    wrapper, trace, final = _simulate(labels, images)
    assert final["results"] >= 3 * len(images)
    assert final["mismatches"] == 0 and final["fail"] == 0 and final["passing"] == 1
    assert final["rounds"] == final["results"] // len(images)
    leds = trace["leds"]
    assert leds[-1] & 0b0110 == 0b0010           # pass on, fail off
    assert len({led & 1 for led in leds}) == 2     # heartbeat blinks
    assert leds[0] & 0b1000 == 0 and leds[-1] & 0b1000  # activity once results flow
    text = _decode_uart(trace["uart"], wrapper.uart_divisor)
    assert text.startswith(b"P\n") and set(text) <= set(b"P\n")


def test_self_test_mismatch_lights_fail():
    images, labels = _images()
    labels[1] = (labels[1] + 1) % 10
    wrapper, trace, final = _simulate(labels, images)
    assert final["fail"] == 1 and final["passing"] == 0
    assert final["mismatches"] == final["rounds"] or final["mismatches"] == final["rounds"] + 1
    assert trace["leds"][-1] & 0b0110 == 0b0100   # fail on, pass off
    text = _decode_uart(trace["uart"], wrapper.uart_divisor)
    assert text.startswith(b"F\n") and b"P" not in text


def test_self_test_wide_beats_and_padding():
    images, labels = _images(count=2, length=10, seed=3)
    _, _, final = _simulate(labels, images, cycles=300, beat_bytes=4)
    assert final["results"] >= 4 and final["fail"] == 0 and final["passing"] == 1


def test_pack_images_order_and_padding():
    words, beats = pack_images([[1, 2, 3], [4, 5, 6]], 2)
    assert beats == 2
    assert words == [0x0201, 0x0003, 0x0504, 0x0006]
    with pytest.raises(ValueError):
        pack_images([[1, 2], [1, 2, 3]], 2)
    with pytest.raises(ValueError):
        pack_images([], 2)


def _unused(core):
    core._MustUse__silence = True
    return core


def test_wrapper_checks_its_arguments():
    board = boards.get("kc705")
    images, labels = _images()
    with pytest.raises(ValueError, match="labels"):
        ClockedWrapper(_unused(SumMod10()), board, images=images, labels=labels[:2],
                       use_mmcm=False)
    with pytest.raises(ValueError, match="fit"):
        ClockedWrapper(_unused(SumMod10(out_width=2)), board, images=images, labels=[9, 9, 9],
                       use_mmcm=False)

    class NoLast(wiring.Component):
        def __init__(self):
            super().__init__({"s_axis_tdata": In(8), "s_axis_tvalid": In(1),
                              "s_axis_tready": Out(1), "m_axis_tdata": Out(8),
                              "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
                              "m_axis_tlast": Out(1)})

        def elaborate(self, platform):
            return Module()

    with pytest.raises(ValueError, match="s_axis_tlast"):
        ClockedWrapper(_unused(NoLast()), board, images=images, labels=labels, use_mmcm=False)
    with pytest.raises(HdlgenError, match="range"):
        ClockedWrapper(_unused(SumMod10()), board, 2000, images=images, labels=labels)


# board tops and project files ---------------------------------------------------------------

def _wrapper(board_name, clock_mhz=None):
    images, labels = _images()
    return ClockedWrapper(SumMod10(), boards.get(board_name), clock_mhz, images=images,
                          labels=labels, core_module="hdlgen_top")


@pytest.mark.parametrize("board_name,primitive,clock_port,pin,mult,outdiv", [
    ("kc705", "MMCME2_BASE", "clk200_0__p", "AD12", "7.0", "7.0"),
    ("zcu104", "MMCME4_BASE", "clk125_0__p", "F23", "8.0", "5.0"),
])
def test_board_top(board_name, primitive, clock_port, pin, mult, outdiv):
    top = elaborate_board_top(_wrapper(board_name), boards.get(board_name))
    assert isinstance(top, BoardTop) and top.name == "hdlgen_board"
    text = top.verilog
    assert re.search(rf"{primitive} #\(", text)
    assert f".CLKFBOUT_MULT_F({mult})" in text and f".CLKOUT0_DIVIDE_F({outdiv})" in text
    assert "BUFG " in text and "IBUFDS" in text
    assert re.search(r"hdlgen_top core \(", text) and ".rst(rst)" in text
    assert "/work" not in text and "src =" not in text
    pins = {port: (loc, dict(attrs)) for port, loc, attrs in top.pins}
    assert pins[clock_port][0] == pin
    assert {f"led_{i}__io" for i in range(4)} <= set(pins)
    assert "uart_0__tx__io" in pins
    assert top.clocks == ((clock_port, boards.get(board_name).clock_mhz_in),)


def _write(out_dir, board_name="kc705", top=True):
    core = SumMod10()
    sources = {
        "hdlgen_top.v": verilog.convert(core, name="hdlgen_top", emit_src=False),
        "hdlgen_rom.v": "module hdlgen_rom #(parameter INIT_FILE = \"\") ();\nendmodule\n",
    }
    mems = {"layer1_w.mem": "ff\n00\n", "layer0_w.mem": "01\n02\n"}
    return write_vivado_project(out_dir, boards.get(board_name), sources, mems, 200, "hdlgen",
                                top=_wrapper(board_name) if top else None)


@pytest.mark.parametrize("board_name", ["kc705", "zcu104"])
def test_project_files(tmp_path, board_name):
    board = boards.get(board_name)
    project = _write(tmp_path, board_name)
    assert project.build_tcl == BUILD_TCL and project.ooc_tcl == OOC_TCL
    assert set(project.files) == {"hdlgen_top.v", "hdlgen_rom.v", "hdlgen_board.v",
                                  "layer0_w.mem", "layer1_w.mem", "hdlgen.xdc",
                                  "hdlgen_ooc.xdc", BUILD_TCL, OOC_TCL}
    for name in project.files:
        assert (tmp_path / name).is_file()
    assert (tmp_path / "layer0_w.mem").read_text() == "01\n02\n"

    build = (tmp_path / BUILD_TCL).read_text()
    steps = ["read_verilog {hdlgen_top.v}", "read_verilog {hdlgen_rom.v}",
             "read_verilog {hdlgen_board.v}", "read_mem {layer0_w.mem}",
             "read_mem {layer1_w.mem}", "read_xdc {hdlgen.xdc}",
             f"synth_design -top hdlgen_board -part {board.part}", "opt_design", "place_design",
             "phys_opt_design", "route_design", "report_utilization -file reports/",
             "report_timing_summary -max_paths 10 -file reports/",
             "write_bitstream -force hdlgen.bit"]
    position = 0
    for step in steps:
        position = build.index(step, position) + len(step)
    assert "cd $script_dir" in build and "file mkdir reports" in build
    assert "false_path_pre" in build

    xdc = (tmp_path / "hdlgen.xdc").read_text()
    clock_port = f"{board.clock_resource}_0__p"
    assert f"create_clock -name board_clk -period {1000 / board.clock_mhz_in:.3f} " \
           f"[get_ports {{{clock_port}}}]" in xdc
    assert re.search(r"set_property PACKAGE_PIN \w+ \[get_ports \{led_0__io\}\]", xdc)
    assert "set_property IOSTANDARD LVDS [get_ports {" + clock_port + "}]" in xdc
    for line in board.xdc_extra:
        assert line in xdc

    ooc = (tmp_path / OOC_TCL).read_text()
    assert f"synth_design -mode out_of_context -top hdlgen_top -part {board.part}" in ooc
    assert "read_verilog {hdlgen_board.v}" not in ooc
    assert "read_mem {layer0_w.mem}" in ooc and "read_xdc {hdlgen_ooc.xdc}" in ooc
    assert "report_utilization -file reports/" in ooc
    assert "create_clock -name core_clk -period 5.000 [get_ports {clk}]" in \
        (tmp_path / "hdlgen_ooc.xdc").read_text()


def test_project_is_deterministic_and_relocatable(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b" / "deeper"
    _write(first)
    _write(second)
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        data = (first / name).read_bytes()
        assert data == (second / name).read_bytes(), name
        text = data.decode()
        assert str(tmp_path) not in text and "/work/" not in text and "/tmp" not in text
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\d\d:\d\d:\d\d", text), name
    # rewriting in place leaves the bytes alone
    _write(first)
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in names)


def test_project_from_paths_and_without_board_top(tmp_path):
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    (source_dir / "hdlgen_top.v").write_text("module hdlgen_top(input clk); endmodule\n")
    (source_dir / "w.mem").write_text("00\n")
    project = write_vivado_project(tmp_path / "out", boards.get("zcu104"),
                                   [source_dir / "hdlgen_top.v"], [source_dir / "w.mem"],
                                   150, "net")
    assert project.build_tcl is None and project.top is None
    assert set(project.files) == {"hdlgen_top.v", "w.mem", "net_ooc.xdc", OOC_TCL}
    assert "-period 6.667" in (tmp_path / "out" / "net_ooc.xdc").read_text()
    assert str(source_dir) not in (tmp_path / "out" / OOC_TCL).read_text()


def test_project_errors(tmp_path):
    board = boards.get("kc705")
    with pytest.raises(HdlgenError, match="bad name"):
        write_vivado_project(tmp_path, board, "module m; endmodule\n", {}, 200, "bad name")
    with pytest.raises(HdlgenError, match="clock"):
        write_vivado_project(tmp_path, board, "module m; endmodule\n", {}, 0)
    with pytest.raises(HdlgenError, match="does not exist"):
        write_vivado_project(tmp_path, board, "module m; endmodule\n",
                             [tmp_path / "missing.mem"], 200)
    with pytest.raises(HdlgenError, match="bare file name"):
        write_vivado_project(tmp_path, board, {"sub/x.v": "module x; endmodule\n"}, {}, 200)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "w.mem").write_text("00\n")
    with pytest.raises(HdlgenError, match="two"):
        write_vivado_project(tmp_path, board, "module m; endmodule\n",
                             [tmp_path / "a" / "w.mem", tmp_path / "b" / "w.mem"], 200)
