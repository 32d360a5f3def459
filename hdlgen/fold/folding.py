"""Folding (how much of each layer is computed in parallel) and the cycle model.

An MVAU with fan-in N and N' neurons computes PE neurons at once, each over SIMD inputs per
cycle: NF = N'/PE neuron folds times SF = N/SIMD synapse folds, so NF*SF cycles per image.
The input stream carries ``in_lanes`` pixel values per beat. The pipeline's steady state is
set by its slowest stage; every stage accepts one beat per cycle at most.

A convolution's MVAU runs once per output pixel: pixels*NF*SF cycles per image. Its
sliding-window unit (and a max-pool's) writes an image into one bank of a frame buffer while
it reads the windows of the previous image from the other, one pixel per cycle each way:
max(H*W, H'*W'*K*K) cycles per image.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HdlgenError
from .plan import SWU, ArgMax, MaxPool, MVAU, Plan

# Cycles from an MVAU step's issue to its result being taken downstream (issue, s1, s2, s3,
# FIFO; see hdlgen.rtl.mvau), and from the argmax unit's last input beat to its label.
MVAU_DEPTH = 5
ARGMAX_DEPTH = 1
# Cycles from a sliding-window unit's last input beat of an image to its first output beat
# (bank handover, memory read; see hdlgen.rtl.swu), and from a window's last beat to its max.
SWU_DEPTH = 2
REDUCE_DEPTH = 1


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


# Widest SIMD the automatic folding picks while the target allows: the PE's adder tree is
# combinational within one cycle, and wider trees would not close timing at 200 MHz.
MAX_SIMD = {"bipolar": 64, "uint": 32, "int": 32}


def auto_fold(plan: Plan, target_cycles: int) -> Folding:
    """The cheapest folding whose every stage takes at most ``target_cycles`` per image,
    keeping SIMD within :data:`MAX_SIMD` where the target allows. A target below the slowest
    sliding-window or pooling stage is raised to that stage's cycles."""
    if target_cycles < 1:
        raise HdlgenError(f"target of {target_cycles} cycles per image is not possible")
    # No MVAU needs to be faster than the slowest sliding window or pooling stage, whose one
    # pixel per cycle no folding changes: a target below it would only waste parallelism.
    target_cycles = max([target_cycles] + [max(e.window.in_beats, e.window.out_beats) for e in plan.engines
                                           if isinstance(e, (SWU, MaxPool))])
    n = input_size(plan)
    lanes = [d for d in divisors(n) if n // d <= target_cycles]
    layers = {}
    for e in plan.mvaus:
        best = None
        for pe in divisors(e.n_out):
            for simd in divisors(e.n_in):
                cycles = e.pixels * (e.n_out // pe) * (e.n_in // simd)
                too_wide = simd > MAX_SIMD[e.in_dtype.kind]
                # a target no folding meets (a convolution's pixels alone exceed it) gets the fastest
                key = (cycles if cycles > target_cycles else 0, too_wide,
                       pe * simd * lane_cost(e) + pe * e.acc_dtype.bits, -simd)
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
            out.append(StageCycles(e.name, "mvau", e.pixels * (e.n_out // f.pe) * (e.n_in // f.simd), MVAU_DEPTH))
            prev_pe = f.pe
        elif isinstance(e, (SWU, MaxPool)):
            win = e.window
            depth = SWU_DEPTH + (REDUCE_DEPTH if isinstance(e, MaxPool) else 0)
            out.append(StageCycles(e.name, e.kind, max(win.in_beats, win.out_beats), depth))
            prev_pe = win.c
        elif isinstance(e, ArgMax):
            out.append(StageCycles(e.name, "argmax", e.n_in // prev_pe, ARGMAX_DEPTH))
    return out


def _dwc(first, last, a, b):
    """Beat times through a width converter from ``a`` to ``b`` lanes (one register)."""
    if a == b:
        return first, last
    g = math.lcm(a, b)
    gather, split = g // a, g // b
    return first + gather, last + 1 + (split - 1)


def predict(plan: Plan, folding: Folding) -> dict:
    """Cycle model: steady-state cycles per image (the bottleneck) and the latency of one image
    through an idle pipeline (first input beat accepted to its label leaving).

    The latency is exact for chains of dense layers. With convolutions or pooling it is an
    estimate: each stage is taken to start when its input allows and to run at its own rate,
    or its input's, whichever is slower, without modelling backpressure inside the chain."""
    st = stages(plan, folding)
    bottleneck = max(st, key=lambda s: s.cycles)
    first, last = 0, st[0].cycles - 1   # beat times of the stream between stages
    lanes = folding.in_lanes
    for e, s in zip(plan.engines, st[1:]):
        if isinstance(e, (SWU, MaxPool)):
            win = e.window
            first, last = _dwc(first, last, lanes, win.c)
            first = last + s.depth
            last = first + win.out_beats - 1
            if isinstance(e, MaxPool):
                first, last = first + win.k * win.k - 1, last
            lanes = win.c
        elif isinstance(e, MVAU) and e.pixels > 1:
            f = folding[e.name]
            first, last = _dwc(first, last, lanes, f.simd)
            nf, sf = e.n_out // f.pe, e.n_in // f.simd
            start = first if nf == 1 else first + sf
            first = start + sf - 1 + MVAU_DEPTH
            last = max(last + (nf - 1) * sf + (sf if nf > 1 else 0), start + e.pixels * nf * sf - 1) + MVAU_DEPTH
            lanes = f.pe
        elif isinstance(e, MVAU):
            f = folding[e.name]
            first, last = _dwc(first, last, lanes, f.simd)
            nf, sf = e.n_out // f.pe, e.n_in // f.simd
            if nf == 1:   # chunks used as they arrive; one result at the end
                first = last = max(last, first + sf - 1) + MVAU_DEPTH
            else:         # ping-pong buffer: folds start once the whole vector is in
                start = last + 1
                first, last = start + sf - 1 + MVAU_DEPTH, start + nf * sf - 1 + MVAU_DEPTH
            lanes = f.pe
        else:
            first = last = last + ARGMAX_DEPTH
    return {
        "cycles_per_image": bottleneck.cycles,
        "bottleneck": bottleneck.name,
        "latency_cycles": last,
        "stages": [asdict(s) for s in st],
    }
