"""Folding (how much of each layer is computed in parallel) and the cycle model.

An MVAU with fan-in N and N' neurons computes PE neurons at once, each over SIMD inputs per
cycle: NF = N'/PE neuron folds times SF = N/SIMD synapse folds, so NF*SF cycles per image.
The input stream carries ``in_lanes`` pixel values per beat. The pipeline's steady state is
set by its slowest stage; every stage accepts one beat per cycle at most.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HdlgenError
from .plan import ArgMax, MVAU, Plan

# Pipeline registers of an MVAU between reading a chunk and writing its result (see
# hdlgen.rtl.mvau), and of the argmax unit.
MVAU_DEPTH = 4
ARGMAX_DEPTH = 1


def divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class LayerFold:
    pe: int
    simd: int


@dataclass(frozen=True)
class Folding:
    in_lanes: int
    layers: dict  # MVAU name -> LayerFold

    def __getitem__(self, name) -> LayerFold:
        return self.layers[name]

    def to_json(self) -> dict:
        return {"in_lanes": self.in_lanes, "layers": {k: asdict(v) for k, v in sorted(self.layers.items())}}

    @classmethod
    def from_json(cls, data: dict, source: str = "folding") -> "Folding":
        try:
            layers = {k: LayerFold(int(v["pe"]), int(v["simd"])) for k, v in data["layers"].items()}
            return cls(int(data["in_lanes"]), layers)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise HdlgenError(f"{source}: expected {{'in_lanes': N, 'layers': {{name: {{'pe': P, 'simd': S}}}}}} "
                              f"({type(e).__name__}: {e})") from None

    @classmethod
    def load(cls, path) -> "Folding":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise HdlgenError(f"folding file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HdlgenError(f"folding file {path} is not valid JSON: {e}") from None
        return cls.from_json(data, str(path))


def input_size(plan: Plan) -> int:
    size = 1
    for s in plan.input_shape:
        size *= s
    return size


def check(plan: Plan, folding: Folding):
    """Raise HdlgenError naming the first layer whose folding does not divide it."""
    n = input_size(plan)
    if folding.in_lanes < 1 or n % folding.in_lanes:
        raise HdlgenError(f"input lanes {folding.in_lanes} do not divide the {n} input values "
                          f"(allowed: {', '.join(map(str, divisors(n)))})")
    for e in plan.mvaus:
        if e.name not in folding.layers:
            raise HdlgenError(f"folding has no entry for layer {e.name!r}")
        f = folding[e.name]
        if f.pe < 1 or e.n_out % f.pe:
            raise HdlgenError(f"layer {e.name}: PE {f.pe} does not divide its {e.n_out} outputs "
                              f"(allowed: {', '.join(map(str, divisors(e.n_out)))})")
        if f.simd < 1 or e.n_in % f.simd:
            raise HdlgenError(f"layer {e.name}: SIMD {f.simd} does not divide its {e.n_in} inputs "
                              f"(allowed: {', '.join(map(str, divisors(e.n_in)))})")
    extra = set(folding.layers) - {e.name for e in plan.mvaus}
    if extra:
        raise HdlgenError(f"folding names layers the model does not have: {', '.join(sorted(extra))}")


def lane_cost(e: MVAU) -> int:
    """Relative logic cost of one PE x SIMD lane: an input-width add for integer inputs,
    about one LUT for a binary XNOR feeding a popcount."""
    return 1 if e.in_dtype.kind == "bipolar" else e.in_dtype.bits + 2


def auto_fold(plan: Plan, target_cycles: int) -> Folding:
    """The cheapest folding whose every stage takes at most ``target_cycles`` per image."""
    if target_cycles < 1:
        raise HdlgenError(f"target of {target_cycles} cycles per image is not possible")
    n = input_size(plan)
    lanes = [d for d in divisors(n) if n // d <= target_cycles]
    layers = {}
    for e in plan.mvaus:
        best = None
        for pe in divisors(e.n_out):
            for simd in divisors(e.n_in):
                if (e.n_out // pe) * (e.n_in // simd) > target_cycles:
                    continue
                key = (pe * simd * lane_cost(e) + pe * e.acc_dtype.bits, -simd)
                if best is None or key < best[0]:
                    best = (key, LayerFold(pe, simd))
        layers[e.name] = best[1]
    folding = Folding(lanes[0], layers)
    return folding


@dataclass(frozen=True)
class StageCycles:
    name: str
    kind: str
    cycles: int       # per image at steady state
    depth: int        # pipeline registers from input to output


def stages(plan: Plan, folding: Folding) -> list:
    """Every stage of the pipeline with its cycles per image, in stream order."""
    out = [StageCycles("input", "input", input_size(plan) // folding.in_lanes, 0)]
    prev_pe = folding.in_lanes
    for e in plan.engines:
        if isinstance(e, MVAU):
            f = folding[e.name]
            out.append(StageCycles(e.name, "mvau", (e.n_out // f.pe) * (e.n_in // f.simd), MVAU_DEPTH))
            prev_pe = f.pe
        elif isinstance(e, ArgMax):
            out.append(StageCycles(e.name, "argmax", e.n_in // prev_pe, ARGMAX_DEPTH))
    return out


def predict(plan: Plan, folding: Folding) -> dict:
    """Cycle model: steady-state cycles per image (the bottleneck) and latency of one image
    through an idle pipeline."""
    st = stages(plan, folding)
    bottleneck = max(st, key=lambda s: s.cycles)
    # Latency: each MVAU must receive its whole input vector before its first neuron fold
    # ends, then runs its remaining folds; the argmax reads the last layer's chunks.
    t_first_in, t_last_in = 0, st[0].cycles - 1
    for e, s in zip(plan.engines, st[1:]):
        if isinstance(e, MVAU):
            f = folding[e.name]
            sf = e.n_in // f.simd
            end_pass0 = max(t_last_in, t_first_in + sf - 1)
            t_first_in = end_pass0 + s.depth
            t_last_in = end_pass0 + (e.n_out // f.pe - 1) * sf + s.depth
        else:
            t_first_in = t_last_in = max(t_last_in, t_first_in + s.cycles - 1) + s.depth
    return {
        "cycles_per_image": bottleneck.cycles,
        "bottleneck": bottleneck.name,
        "latency_cycles": t_last_in + 1,
        "stages": [asdict(s) for s in st],
    }
