"""One accelerator design: a model's IR with its plan, folding, memory images and the
cycle model's prediction; and the emitted core (Verilog + ``.mem`` files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog

from ..engines import engine_kind
from ..errors import HdlgenError
from ..fold import Folding, Plan, auto_fold, check, plan as make_plan, predict
from ..fold.resources import budget, estimate, explain, fastest_fit
from ..fold.timeline import delay_depths, fixed_stage
from ..ir import Graph
from ..rtl import LIBRARY_FILE, LIBRARY_VERILOG, Accelerator, pack_all, write_mem_files

CORE_NAME = "hdlgen_accel"
DEFAULT_TARGET_CYCLES = 1024


@dataclass
class Design:
    name: str
    graph: Graph
    plan: Plan
    folding: Folding
    images: dict
    prediction: dict
    folding_notes: list = field(default_factory=list)   # how the folding was chosen, per layer

    @property
    def delay_depths(self) -> dict:
        """Depth in pixels of every delay FIFO (residual shortcuts)."""
        return delay_depths(self.plan, self.folding)

    def accelerator(self, external_memories=True) -> Accelerator:
        return Accelerator(self.plan, self.folding, self.images, external_memories)


def target_cycles(clock_mhz: float, fps: float | None) -> int:
    if fps is None:
        return DEFAULT_TARGET_CYCLES
    if fps <= 0:
        raise HdlgenError(f"--fps must be positive, not {fps}")
    cycles = int(clock_mhz * 1e6 // fps)
    if cycles < 1:
        raise HdlgenError(f"--fps {fps:,.0f} at {clock_mhz} MHz leaves {clock_mhz * 1e6 / fps:.3f} cycles per "
                          f"image; the pipeline takes at least 1 cycle per image")
    return cycles


def resource_floor(p: Plan, folding: Folding) -> dict:
    """A floor under the resources of a design, from the folding alone (before anything is
    built or synthesized), for refusing hopeless foldings early.

    Each engine kind gives its own (:meth:`EngineKind.floor`). For an MVAU, ``lut``: each PE
    sums SIMD lanes of ``in_bits`` input bits into one result that depends on all of them; a
    6-input LUT narrows at most six signals to one, so a PE takes about SIMD * in_bits / 6 LUTs
    at the very least (synthesized adder trees take several times more). ``memory_bits``:
    weight memories deeper than one word must be stored somewhere (a one-word memory may fold
    into constants).
    """
    floors = [engine_kind(e).floor(e, folding.knobs(e)) for e in p.engines]
    return {"lut": sum(f.lut for f in floors), "memory_bits": sum(f.memory_bits for f in floors),
            "widest": max(floors, key=lambda f: f.width).what}


def require_floor_fits(p: Plan, folding: Folding, board):
    """Raise HdlgenError when :func:`resource_floor` already exceeds ``board``."""
    need = resource_floor(p, folding)
    cap = board.capacities
    problems = []
    if need["lut"] > cap["lut"]:
        problems.append(f"LUT at least {need['lut']:,} > {cap['lut']:,} ({100 * need['lut'] / cap['lut']:.0f}%; "
                        f"{need['widest']})")
    store = cap["bram36"] * 36 * 1024 + cap["uram"] * 288 * 1024 + cap["lut"] * 64
    if need["memory_bits"] > store:
        problems.append(f"weight memory {need['memory_bits']:,} bits > {store:,} bits of BRAM, URAM and LUT RAM")
    if problems:
        raise HdlgenError(f"design does not fit {board.name} (lower bound before synthesis): "
                          + "; ".join(problems) + "; lower PE/SIMD (--folding, --fps)")


def make_design(graph: Graph, name: str, folding: Folding | None = None, clock_mhz: float = 200.0,
                fps: float | None = None, board=None) -> Design:
    """Plan, fold, check and pack ``graph``.

    Folding: ``folding`` when given; else, with ``fps``, the cheapest folding that reaches it;
    else the default target of :data:`DEFAULT_TARGET_CYCLES`, or with a board the fastest
    folding no faster than that target that fits the board's budgets (:mod:`hdlgen.fold.resources`).
    With a board, an automatic folding whose estimate exceeds the budgets is an error that
    shows the numbers. The folding names each layer's engine; without one, each layer gets the
    first engine that takes it."""
    p = make_plan(graph, folding.engines() if folding is not None else None)
    notes = []
    bud = budget(board) if board is not None else None
    if folding is not None:
        notes.append("folding given by the user (--folding)")
    elif fps is not None:
        need = target_cycles(clock_mhz, fps)
        slow, floor = fixed_stage(p)
        if need < floor:
            raise HdlgenError(f"--fps {fps:,.0f} at {clock_mhz:g} MHz leaves {need:,} cycles per image, but "
                              f"{slow.name} ({slow.kind}, one pixel per cycle) alone takes {floor:,}: at most "
                              f"{clock_mhz * 1e6 / floor:,.0f} images/s at this clock")
        folding = auto_fold(p, need)
        if bud is not None:
            est = estimate(p, folding)
            if not est.fits(bud):
                try:
                    best, _ = fastest_fit(p, bud)
                    alt = predict(p, best)["cycles_per_image"]
                    hint = f"; the fastest folding that fits runs {clock_mhz * 1e6 / alt:,.0f} images/s ({alt:,} cycles)"
                except HdlgenError as e:
                    hint = f"; {e}"
                raise HdlgenError(f"--fps {fps:,.0f} at {clock_mhz:g} MHz needs {need:,} cycles per image; the "
                                  f"cheapest folding for that is estimated at {est.lut:,} LUT (budget {bud['lut']:,}, "
                                  f"{100 * bud['lut_share']:.0f}% of {board.name}) and {est.bram36:g} BRAM36 (budget "
                                  f"{bud['bram36']:g}){hint}")
        notes.append(f"target --fps {fps:,.0f} at {clock_mhz:g} MHz = {need:,} cycles per image; each layer gets "
                     f"the cheapest PE x SIMD within it")
    elif bud is not None:
        folding, est = fastest_fit(p, bud, fastest=DEFAULT_TARGET_CYCLES)
        notes.append(f"fastest folding (no faster than {DEFAULT_TARGET_CYCLES:,} cycles per image) whose estimate "
                     f"fits the budget of {bud['lut']:,} LUT ({100 * bud['lut_share']:.0f}% of {board.name}) and "
                     f"{bud['bram36']:g} BRAM36 ({100 * bud['bram_share']:.0f}%): {est.lut:,} LUT, {est.bram36:g} BRAM36")
    else:
        folding = auto_fold(p, DEFAULT_TARGET_CYCLES)
        notes.append(f"default target of {DEFAULT_TARGET_CYCLES:,} cycles per image")
    check(p, folding)
    if board is not None:
        require_floor_fits(p, folding, board)
    pred = predict(p, folding)
    if fps is not None and pred["cycles_per_image"] > clock_mhz * 1e6 / fps:
        need = clock_mhz * 1e6 / fps
        raise HdlgenError(f"--fps {fps:,.0f} at {clock_mhz} MHz needs {need:,.1f} cycles per image; the "
                          f"slowest stage takes {pred['cycles_per_image']:,} ({pred['bottleneck']})")
    est = estimate(p, folding)
    notes += explain(p, folding, est)
    notes.append(f"estimate of the whole core: {est.lut:,} LUT, {est.bram36:g} BRAM36 (the synthesis figures "
                 f"below are the measured ones)")
    return Design(name, graph, p, folding, pack_all(graph, p, folding), pred, notes)


def write_core(design: Design, directory: Path) -> list:
    """Write the accelerator core into ``directory``: ``hdlgen_accel.v``, ``hdlgen_lib.v`` (the ROM and
    popcount modules it instantiates) and the ``.mem`` files (read by bare name, so simulators
    and synthesis run in this folder).
    Returns the Verilog source paths."""
    directory.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(design.accelerator(True), name=CORE_NAME, emit_src=False)
    core = directory / f"{CORE_NAME}.v"
    core.write_text(text)
    rom = directory / LIBRARY_FILE
    rom.write_text(LIBRARY_VERILOG)
    write_mem_files(directory, design.images)
    return [core, rom]
