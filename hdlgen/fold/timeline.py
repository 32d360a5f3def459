"""The cycle model: values per beat on every stream, cycles per image of every stage, and the
beat times of one image through an idle pipeline (latency), from each engine kind's own model.

The pipeline's steady state is set by its slowest stage; every stage accepts one beat per
cycle at most. Where a stream carries another number of values per beat than its reader takes,
a width converter sits between them (:func:`_dwc`).

Delay FIFOs (:mod:`hdlgen.engines.delay`) are sized here: a FIFO's depth is what the other
input of its reader needs at the pipeline's rate, plus one image: a FIFO that holds a whole
image can never deadlock the fork in front of it, whatever the stall pattern, because the
other branch then has all the input it needs to produce that image (see :func:`delay_depth`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..engines import NoKnobs, engine_kind


def input_size(plan) -> int:
    size = 1
    for s in plan.input_shape:
        size *= s
    return size


def fixed_stage(plan) -> tuple:
    """(engine, cycles) of the slowest stage no folding speeds up (an engine kind that is
    ``paced``: a sliding window, pooling or decimator at one pixel per cycle); (None, 1) when
    there is none."""
    fixed = []
    for e in plan.engines:
        kind = engine_kind(e)
        if kind.paced:
            fixed.append((kind.cycles(e, NoKnobs(), kind.lanes_in(e, NoKnobs(), ())), e))
    if not fixed:
        return None, 1
    cycles, e = max(fixed, key=lambda ce: ce[0])   # the first in stream order on a tie
    return e, cycles


def output_names(e) -> list:
    """The streams engine ``e`` drives: its name, or ``<name>/<k>`` for each of several outputs."""
    n = engine_kind(e).outputs(e)
    return [e.name] if n == 1 else [f"{e.name}/{k}" for k in range(n)]


@dataclass(frozen=True)
class Lanes:
    streams: dict     # stream name -> values per beat
    inputs: dict      # engine name -> values per beat it takes on each input (after width converters)


def lanes(plan, folding) -> Lanes:
    streams = {"input": folding.in_lanes}
    inputs = {}
    for e in plan.engines:
        kind, knobs = engine_kind(e), folding.knobs(e)
        want = kind.lanes_in(e, knobs, tuple(streams[s] for s in plan.inputs[e.name]))
        inputs[e.name] = tuple(want)
        out = kind.lanes_out(e, knobs, inputs[e.name])
        for name in output_names(e):
            streams[name] = out
    return Lanes(streams, inputs)


@dataclass(frozen=True)
class StageCycles:
    name: str
    kind: str
    cycles: int       # per image at steady state
    depth: int        # pipeline registers from input to output


def stages(plan, folding) -> list:
    """Every stage of the pipeline with its cycles per image, in stream order."""
    ln = lanes(plan, folding)
    out = [StageCycles("input", "input", input_size(plan) // folding.in_lanes, 0)]
    for e in plan.engines:
        kind, knobs = engine_kind(e), folding.knobs(e)
        out.append(StageCycles(e.name, e.kind, kind.cycles(e, knobs, ln.inputs[e.name]), kind.depth(e, knobs)))
    return out


def _dwc(first, last, a, b):
    """Beat times through a width converter from ``a`` to ``b`` lanes (one register)."""
    if a == b:
        return first, last
    g = math.lcm(a, b)
    gather, split = g // a, g // b
    return first + gather, last + 1 + (split - 1)


def timeline(plan, folding) -> dict:
    """Beat times (first, last) of the first image on every stream of an idle pipeline, and on
    every engine input after its width converter (keys ``(engine, k)``)."""
    ln = lanes(plan, folding)
    times = {"input": (0, input_size(plan) // folding.in_lanes - 1)}
    for e in plan.engines:
        ins = []
        for k, src in enumerate(plan.inputs[e.name]):
            ins.append(_dwc(*times[src], ln.streams[src], ln.inputs[e.name][k]))
            times[(e.name, k)] = ins[-1]
        out = engine_kind(e).timeline(e, folding.knobs(e), ins)
        for name in output_names(e):
            times[name] = out
    return times


def delay_depth(plan, folding, name: str, times: dict | None = None) -> int:
    """Depth of balancing FIFO ``name`` in beats: the beats that enter it while its reader's
    other inputs wait for their first beat (at the pipeline's steady rate), plus one whole
    image, which alone rules out deadlock; rounded up to a multiple of 16."""
    e = plan.engine(name)
    reader = next(x for x in plan.engines if name in plan.inputs[x.name])
    t = times or timeline(plan, folding)
    mine = plan.inputs[reader.name].index(name)
    others = [t[(reader.name, k)][0] for k in range(len(plan.inputs[reader.name])) if k != mine]
    wait = max([0] + [o - t[(name, 0)][0] for o in others])
    period = max(s.cycles for s in stages(plan, folding))
    beats = engine_kind(e).cycles(e, folding.knobs(e), lanes(plan, folding).inputs[name])
    depth = beats + -(-wait * beats // period)
    return -(-depth // 16) * 16


def delay_depths(plan, folding) -> dict:
    """Depth of every balancing FIFO (kinds that ``balance``), by engine name."""
    t = timeline(plan, folding)
    return {e.name: delay_depth(plan, folding, e.name, t) for e in plan.engines if engine_kind(e).balances}


def predict(plan, folding) -> dict:
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
        "latency_cycles": timeline(plan, folding)[plan.engines[-1].name][1],
        "stages": [asdict(s) for s in st],
    }
