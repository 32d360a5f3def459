"""Folding (how much of each layer is computed in parallel) and the cycle model.

An MVAU with fan-in N and N' neurons computes PE neurons at once, each over SIMD inputs per
cycle: NF = N'/PE neuron folds times SF = N/SIMD synapse folds, so NF*SF cycles per image.
The input stream carries ``in_lanes`` pixel values per beat. The pipeline's steady state is
set by its slowest stage; every stage accepts one beat per cycle at most.

A convolution's MVAU runs once per output pixel: pixels*NF*SF cycles per image. Its
sliding-window unit (and a max-pool's) writes an image into one bank of a frame buffer while
it reads the windows of the previous image from the other, one pixel per cycle each way:
max(H*W, H'*W'*K*K) cycles per image. A 1x1 strided convolution's decimator takes H*W.

Residual networks add engines that move one beat per cycle: a fork (copies of its input), a
delay FIFO (one pixel per beat), the threshold select after an MVAU (one beat of PE values per
cycle) and global pooling (one pixel per cycle). The delay FIFO's depth is what the other
branch's latency needs at the pipeline's rate, plus one image: a FIFO that holds a whole image
can never deadlock the fork, whatever the stall pattern, because the other branch then has
all the input it needs to produce that image (see :func:`delay_depth`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HdlgenError
from .plan import SWU, ArgMax, Decimate, Delay, Fork, GlobalSum, MaxPool, MVAU, Plan, SelectThreshold

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


def fixed_stage(plan: Plan) -> tuple:
    """(engine, cycles) of the slowest stage no folding speeds up: a sliding window, pooling
    or decimator at one pixel per cycle; (None, 1) when there is none."""
    fixed = [(max(e.window.in_beats, e.window.out_beats), e) for e in plan.engines
             if isinstance(e, (SWU, MaxPool, Decimate))]
    if not fixed:
        return None, 1
    cycles, e = max(fixed, key=lambda ce: ce[0])   # the first in stream order on a tie
    return e, cycles


def auto_fold(plan: Plan, target_cycles: int) -> Folding:
    """The cheapest folding whose every stage takes at most ``target_cycles`` per image,
    keeping SIMD within :data:`MAX_SIMD` where the target allows. A target below the slowest
    sliding-window or pooling stage is raised to that stage's cycles."""
    if target_cycles < 1:
        raise HdlgenError(f"target of {target_cycles} cycles per image is not possible")
    # No MVAU needs to be faster than the slowest sliding window or pooling stage, whose one
    # pixel per cycle no folding changes: a target below it would only waste parallelism.
    target_cycles = max(target_cycles, fixed_stage(plan)[1])
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


def stream_lanes(plan: Plan, folding: Folding) -> dict:
    """Values per beat of every stream: ``"input"``, each engine's output, each fork copy."""
    lanes = {"input": folding.in_lanes}
    for e in plan.engines:
        src = plan.inputs[e.name]
        if isinstance(e, MVAU):
            lanes[e.name] = folding[e.name].pe
        elif isinstance(e, (SWU, MaxPool, Decimate)):
            lanes[e.name] = e.window.c
        elif isinstance(e, Fork):
            for k in range(e.ways):
                lanes[f"{e.name}/{k}"] = lanes[src[0]]
        elif isinstance(e, Delay):
            lanes[e.name] = e.channels
        elif isinstance(e, SelectThreshold):
            lanes[e.name] = folding[e.mvau].pe
        elif isinstance(e, GlobalSum):
            lanes[e.name] = e.channels
        else:
            lanes[e.name] = 1
    return lanes


def consumer_lanes(plan: Plan, folding: Folding, e, k: int, lanes_in: int) -> int:
    """Values per beat engine ``e`` takes on its ``k``-th input (a width converter is put in
    front when the stream carries another number)."""
    if isinstance(e, MVAU):
        return folding[e.name].simd
    if isinstance(e, (SWU, MaxPool, Decimate)):
        return e.window.c
    if isinstance(e, (Delay, GlobalSum)):
        return e.channels
    if isinstance(e, SelectThreshold):
        return folding[e.mvau].pe
    return lanes_in   # fork, argmax


def _cycles(e, plan: Plan, folding: Folding, lanes: dict) -> int:
    if isinstance(e, MVAU):
        f = folding[e.name]
        return e.pixels * (e.n_out // f.pe) * (e.n_in // f.simd)
    if isinstance(e, (SWU, MaxPool)):
        return max(e.window.in_beats, e.window.out_beats)
    if isinstance(e, Decimate):
        return e.window.in_beats
    if isinstance(e, Fork):
        return e.size // lanes[plan.inputs[e.name][0]]
    if isinstance(e, Delay):
        return e.pixels
    if isinstance(e, SelectThreshold):
        return e.pixels * e.channels // folding[e.mvau].pe
    if isinstance(e, GlobalSum):
        return e.pixels
    return e.n_in // lanes[plan.inputs[e.name][0]]


def stages(plan: Plan, folding: Folding) -> list:
    """Every stage of the pipeline with its cycles per image, in stream order."""
    lanes = stream_lanes(plan, folding)
    out = [StageCycles("input", "input", input_size(plan) // folding.in_lanes, 0)]
    for e in plan.engines:
        if isinstance(e, MVAU):
            depth = MVAU_DEPTH
        elif isinstance(e, (SWU, MaxPool)):
            depth = SWU_DEPTH + (REDUCE_DEPTH if isinstance(e, MaxPool) else 0)
        elif isinstance(e, (ArgMax, SelectThreshold, GlobalSum)):
            depth = 1
        elif isinstance(e, Delay):
            depth = DELAY_DEPTH
        else:
            depth = 0
        out.append(StageCycles(e.name, e.kind, _cycles(e, plan, folding, lanes), depth))
    return out


# Cycles from a beat entering a delay FIFO to it being readable at its output.
DELAY_DEPTH = 2


def _dwc(first, last, a, b):
    """Beat times through a width converter from ``a`` to ``b`` lanes (one register)."""
    if a == b:
        return first, last
    g = math.lcm(a, b)
    gather, split = g // a, g // b
    return first + gather, last + 1 + (split - 1)


def _timeline(plan: Plan, folding: Folding) -> dict:
    """Beat times (first, last) of the first image on every stream of an idle pipeline, and on
    every engine input after its width converter (keys ``(engine, k)``)."""
    lanes = stream_lanes(plan, folding)
    times = {"input": (0, input_size(plan) // folding.in_lanes - 1)}
    for e in plan.engines:
        ins = []
        for k, src in enumerate(plan.inputs[e.name]):
            want = consumer_lanes(plan, folding, e, k, lanes[src])
            ins.append(_dwc(*times[src], lanes[src], want))
            times[(e.name, k)] = ins[-1]
        first, last = ins[0]
        if isinstance(e, (SWU, MaxPool)):
            win = e.window
            first = last + SWU_DEPTH + (REDUCE_DEPTH if isinstance(e, MaxPool) else 0)
            last = first + win.out_beats - 1
            if isinstance(e, MaxPool):
                first = first + win.k * win.k - 1
        elif isinstance(e, MVAU):
            f = folding[e.name]
            nf, sf = e.n_out // f.pe, e.n_in // f.simd
            if e.pixels > 1:
                start = first if nf == 1 else first + sf
                first, last = (start + sf - 1 + MVAU_DEPTH,
                               max(last + (nf - 1) * sf + (sf if nf > 1 else 0), start + e.pixels * nf * sf - 1)
                               + MVAU_DEPTH)
            elif nf == 1:   # chunks used as they arrive; one result at the end
                first = last = max(last, first + sf - 1) + MVAU_DEPTH
            else:           # ping-pong buffer: folds start once the whole vector is in
                start = last + 1
                first, last = start + sf - 1 + MVAU_DEPTH, start + nf * sf - 1 + MVAU_DEPTH
        elif isinstance(e, (Delay, Decimate)):   # a decimator keeps its pixels in a row FIFO
            first, last = first + DELAY_DEPTH, last + DELAY_DEPTH
        elif isinstance(e, SelectThreshold):
            first, last = max(first, ins[1][0]) + 1, max(last, ins[1][1]) + 1
        elif isinstance(e, (GlobalSum, ArgMax)):
            first = last = last + 1
        if isinstance(e, Fork):
            for k in range(e.ways):
                times[f"{e.name}/{k}"] = (first, last)
        else:
            times[e.name] = (first, last)
    return times


def delay_depth(plan: Plan, folding: Folding, name: str, timeline: dict | None = None) -> int:
    """Depth in pixels of delay FIFO ``name``: the pixels that enter it while the other input of
    its threshold select waits for its first beat (at the pipeline's steady rate), plus one
    whole image, which alone rules out deadlock; rounded up to a multiple of 16."""
    e = plan.engine(name)
    sel = next(x for x in plan.engines if isinstance(x, SelectThreshold) and plan.inputs[x.name][1] == name)
    t = timeline or _timeline(plan, folding)
    wait = max(0, t[(sel.name, 0)][0] - t[(name, 0)][0])
    period = max(s.cycles for s in stages(plan, folding))
    depth = e.pixels + -(-wait * e.pixels // period)
    return -(-depth // 16) * 16


def delay_depths(plan: Plan, folding: Folding) -> dict:
    t = _timeline(plan, folding)
    return {e.name: delay_depth(plan, folding, e.name, t) for e in plan.engines if isinstance(e, Delay)}


def predict(plan: Plan, folding: Folding) -> dict:
    """Cycle model: steady-state cycles per image (the bottleneck) and the latency of one image
    through an idle pipeline (first input beat accepted to its label leaving).

    The latency is exact for chains of dense layers. With convolutions, pooling or residual
    branches it is an estimate: each stage is taken to start when its input allows and to run
    at its own rate, or its input's, whichever is slower, without modelling backpressure
    inside the pipeline."""
    st = stages(plan, folding)
    bottleneck = max(st, key=lambda s: s.cycles)
    return {
        "cycles_per_image": bottleneck.cycles,
        "bottleneck": bottleneck.name,
        "latency_cycles": _timeline(plan, folding)[plan.engines[-1].name][1],
        "stages": [asdict(s) for s in st],
    }
