"""Vivado project files: XDC constraints and non-project Tcl scripts.

:func:`write_vivado_project` writes, into one folder, everything Vivado needs without
hdlgen being installed: the Verilog sources, the ``.mem`` files that ``$readmemh`` reads by
bare name, an XDC and two Tcl scripts:

* ``vivado_build.tcl``: bitstream for the board (board top with pins and clocking),
  ``vivado -mode batch -source vivado_build.tcl`` from any directory;
* ``vivado_ooc.tcl``: out-of-context synthesis of the accelerator core alone, for users who
  drop it into a block design.

The scripts change into their own folder first and name every file relative to it, so the
folder can be moved; the files hold no time stamps and no paths of the machine that wrote
them, and the same inputs give byte-identical files.
"""

from dataclasses import dataclass
from pathlib import Path
import os
import re

from ..engines.ports import CLOCK
from ..errors import HdlgenError

__all__ = ["BoardTop", "VivadoProject", "elaborate_board_top", "write_vivado_project",
           "BUILD_TCL", "OOC_TCL"]

BUILD_TCL = "vivado_build.tcl"
OOC_TCL = "vivado_ooc.tcl"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")


@dataclass(frozen=True)
class BoardTop:
    """A board top elaborated for a platform: its Verilog and its pin constraints.

    ``pins`` holds ``(port, package_pin, ((attribute, value), ...))`` per top-level port bit,
    ``clocks`` ``(port, mhz)`` per board clock input the top uses.
    """

    name: str
    verilog: str
    pins: tuple
    clocks: tuple


@dataclass(frozen=True)
class VivadoProject:
    """What :func:`write_vivado_project` wrote: ``files`` are names inside ``out_dir``."""

    out_dir: Path
    name: str
    files: tuple
    build_tcl: str
    ooc_tcl: str
    top: str
    core_top: str


def elaborate_board_top(top, board, name="hdlgen_board"):
    """Elaborate ``top`` (e.g. a :class:`~hdlgen.build.clocking.ClockedWrapper`) on a fresh
    platform of ``board`` and return a :class:`BoardTop`. No Vivado is needed."""
    _check_name(name, "board top name")
    platform = board.platform()
    plan = platform.prepare(top, name=name, emit_src=False)
    verilog = plan.files[f"{name}.v"]
    if isinstance(verilog, bytes):
        verilog = verilog.decode()
    pins = tuple((port, pin, tuple(sorted((str(k), str(v)) for k, v in attrs.items())))
                 for port, pin, attrs in platform.iter_port_constraints_bits())
    clocks = tuple((port.name, frequency / 1e6)
                   for port, frequency in platform.iter_port_clock_constraints())
    return BoardTop(name=name, verilog=verilog, pins=pins, clocks=clocks)


def _check_name(name, what):
    if not isinstance(name, str) or not _NAME.match(name):
        raise HdlgenError(f"{what} {name!r} must be a Verilog identifier "
                          f"(letters, digits, underscores)")


def _collect(items, what, default_name=None):
    """``items``: text (named ``default_name``), a mapping name -> text/bytes, or paths.
    Returns a list of (file name, bytes) in a deterministic order."""
    if items is None:
        return []
    if isinstance(items, bytes) and default_name is not None:
        entries = [(default_name, items)]
    elif isinstance(items, str) and default_name is not None and "\n" in items:
        entries = [(default_name, items)]
    elif isinstance(items, dict):
        entries = list(items.items())
    elif isinstance(items, (str, os.PathLike)):
        entries = [(Path(items).name, Path(items))]
    else:
        entries = [(Path(item).name, Path(item)) for item in items]
    result = []
    seen = set()
    for file_name, content in entries:
        file_name = str(file_name)
        if not _FILE.match(file_name):
            raise HdlgenError(f"{what} name {file_name!r} must be a bare file name "
                              f"(letters, digits, '_', '.', '-', '+')")
        if file_name in seen:
            raise HdlgenError(f"two {what}s are called {file_name!r}; "
                              f"$readmemh and Vivado find files by bare name")
        seen.add(file_name)
        if isinstance(content, Path):
            if not content.is_file():
                raise HdlgenError(f"{what} {str(content)!r} does not exist")
            data = content.read_bytes()
        elif isinstance(content, str):
            data = content.encode()
        elif isinstance(content, bytes):
            data = content
        else:
            raise TypeError(f"{what} {file_name!r}: expected text, bytes or a path, "
                            f"not {content!r}")
        result.append((file_name, data))
    return result


def _period_ns(mhz):
    return f"{1000.0 / float(mhz):.3f}"


def _board_xdc(board, board_top, clock_mhz):
    lines = [
        f"# Constraints for {board_top.name} on {board.description} ({board.part}).",
        f"# Accelerator clock {float(clock_mhz):g} MHz, made by an MMCM from the board clock;",
        "# Vivado derives the MMCM output clock from the board clock below.",
        "",
    ]
    lines += list(board.xdc_extra)
    if board.xdc_extra:
        lines.append("")
    for port, pin, attrs in board_top.pins:
        lines.append(f"set_property PACKAGE_PIN {pin} [get_ports {{{port}}}]")
        for attr, value in attrs:
            lines.append(f"set_property {attr} {value} [get_ports {{{port}}}]")
    lines.append("")
    for index, (port, mhz) in enumerate(board_top.clocks):
        clock_name = "board_clk" if index == 0 else f"board_clk{index}"
        lines.append(f"create_clock -name {clock_name} -period {_period_ns(mhz)} "
                     f"[get_ports {{{port}}}]")
    lines.append("set_false_path -to [get_ports -filter {DIRECTION == OUT}]")
    return "\n".join(lines) + "\n"


def _ooc_xdc(core_top, clock_mhz):
    return "\n".join([
        f"# Out-of-context constraints for {core_top} at {float(clock_mhz):g} MHz.",
        f"create_clock -name core_clk -period {_period_ns(clock_mhz)} [get_ports {{{CLOCK}}}]",
        "",
    ])


_PREAMBLE = """\
set script_dir [file dirname [file normalize [info script]]]
cd $script_dir
file mkdir reports
"""

_AMARANTH_TIMING = """\
# timing exceptions that Amaranth's synchronizers ask for through cell attributes
foreach cell [get_cells -quiet -hier -filter {amaranth.vivado.false_path == "TRUE"}] {
    set_false_path -to $cell
}
foreach pin [get_pins -quiet -of [get_cells -quiet -hier -filter {amaranth.vivado.false_path_pre == "TRUE"}] -filter {REF_PIN_NAME == PRE}] {
    set_false_path -to $pin
}
"""

_TIMING_CHECK = """\
set worst [get_timing_paths -quiet -max_paths 1 -nworst 1 -setup]
if {[llength $worst] > 0 && [get_property SLACK $worst] < 0} {
    puts "hdlgen: TIMING NOT MET, worst setup slack [get_property SLACK $worst] ns (see reports/)"
} else {
    puts "hdlgen: timing met"
}
"""


def _read_commands(verilog_names, mem_names, xdc_names):
    lines = []
    for file_name in verilog_names:
        lines.append(f"read_verilog {{{file_name}}}")
    for file_name in mem_names:
        lines.append(f"read_mem {{{file_name}}}")
    for file_name in xdc_names:
        lines.append(f"read_xdc {{{file_name}}}")
    return "\n".join(lines) + "\n"


def _build_tcl(board, name, top, verilog_names, mem_names, xdc_name, clock_mhz):
    return "".join([
        f"# Vivado non-project build of {top} for {board.description}, part {board.part},\n",
        f"# accelerator clock {float(clock_mhz):g} MHz.\n",
        f"# Run: vivado -mode batch -source {BUILD_TCL}\n",
        "# (reports go to reports/, the bitstream to "
        f"{name}.bit, beside this script)\n",
        _PREAMBLE,
        _read_commands(verilog_names, mem_names, [xdc_name]),
        f"synth_design -top {top} -part {board.part}\n",
        _AMARANTH_TIMING,
        f"write_checkpoint -force {name}_synth.dcp\n",
        "report_utilization -file reports/utilization_synth.rpt\n",
        "report_timing_summary -max_paths 10 -file reports/timing_synth.rpt\n",
        "opt_design\n",
        "place_design\n",
        "phys_opt_design\n",
        "route_design\n",
        f"write_checkpoint -force {name}_routed.dcp\n",
        "report_utilization -file reports/utilization.rpt\n",
        "report_utilization -hierarchical -file reports/utilization_hierarchical.rpt\n",
        "report_timing_summary -max_paths 10 -file reports/timing_summary.rpt\n",
        "report_clock_utilization -file reports/clock_utilization.rpt\n",
        "report_drc -file reports/drc.rpt\n",
        "report_power -file reports/power.rpt\n",
        _TIMING_CHECK,
        f"write_bitstream -force {name}.bit\n",
    ])


def _ooc_tcl(board, name, core_top, verilog_names, mem_names, xdc_name, clock_mhz):
    return "".join([
        f"# Vivado out-of-context synthesis of the accelerator core {core_top}\n",
        f"# for {board.part} at {float(clock_mhz):g} MHz (no I/O buffers; for block designs).\n",
        f"# Run: vivado -mode batch -source {OOC_TCL}\n",
        _PREAMBLE,
        _read_commands(verilog_names, mem_names, [xdc_name]),
        f"synth_design -mode out_of_context -top {core_top} -part {board.part}\n",
        f"write_checkpoint -force {name}_ooc.dcp\n",
        "report_utilization -file reports/utilization_ooc.rpt\n",
        "report_utilization -hierarchical -file reports/utilization_ooc_hierarchical.rpt\n",
        "report_timing_summary -max_paths 10 -file reports/timing_ooc.rpt\n",
        _TIMING_CHECK,
    ])


def write_vivado_project(out_dir, board, sources, mem_files, clock_mhz, name="hdlgen", *,
                         top=None, core_top="hdlgen_top"):
    """Write a Vivado project folder and return a :class:`VivadoProject`.

    ``sources``: the Verilog of the accelerator (the core ``core_top`` and every module it
    instantiates, such as ``hdlgen_rom``), given as one Verilog text (written as
    ``{core_top}.v``), a mapping ``{file name: text}``, or paths of files to copy.
    ``mem_files``: the ``.mem`` files, as a mapping ``{file name: text, bytes or
    pathlib.Path}`` or an iterable of paths; they are
    copied beside the scripts under their bare names, which is how ``$readmemh`` names them.
    ``clock_mhz``: the accelerator clock, used for the out-of-context clock constraint.
    ``top``: the board top, a :class:`BoardTop` or an Amaranth elaboratable (elaborated with
    :func:`elaborate_board_top` as ``{name}_board``); without it only the out-of-context
    script is written and ``build_tcl`` is ``None``.
    """
    _check_name(name, "project name")
    _check_name(core_top, "core module name")
    try:
        clock_mhz = float(clock_mhz)
    except (TypeError, ValueError):
        raise HdlgenError(f"clock must be a number of MHz, not {clock_mhz!r}") from None
    if not clock_mhz > 0:
        raise HdlgenError(f"clock must be a positive number of MHz, not {clock_mhz!r}")

    verilog = _collect(sources, "Verilog source", default_name=f"{core_top}.v")
    if not verilog:
        raise HdlgenError("no Verilog sources for the Vivado project")
    mems = sorted(_collect(mem_files, "memory file"))

    board_top = None
    if top is not None:
        board_top = top if isinstance(top, BoardTop) \
            else elaborate_board_top(top, board, f"{name}_board")
        verilog.append((f"{board_top.name}.v", board_top.verilog.encode()))

    files = {}
    for file_name, data in verilog + mems:
        if file_name in files:
            raise HdlgenError(f"two project files are called {file_name!r}")
        files[file_name] = data

    core_names = [file_name for file_name, _ in verilog
                  if board_top is None or file_name != f"{board_top.name}.v"]
    mem_names = [file_name for file_name, _ in mems]
    ooc_xdc = f"{name}_ooc.xdc"
    files[ooc_xdc] = _ooc_xdc(core_top, clock_mhz).encode()
    files[OOC_TCL] = _ooc_tcl(board, name, core_top, core_names, mem_names, ooc_xdc,
                              clock_mhz).encode()
    build_tcl = None
    if board_top is not None:
        xdc = f"{name}.xdc"
        files[xdc] = _board_xdc(board, board_top, clock_mhz).encode()
        files[BUILD_TCL] = _build_tcl(board, name, board_top.name,
                                      [file_name for file_name, _ in verilog], mem_names, xdc,
                                      clock_mhz).encode()
        build_tcl = BUILD_TCL

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        target = out_dir / file_name
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
    return VivadoProject(out_dir=out_dir, name=name, files=tuple(sorted(files)),
                         build_tcl=build_tcl, ooc_tcl=OOC_TCL,
                         top=board_top.name if board_top else None, core_top=core_top)
