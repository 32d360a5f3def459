"""Label select, model side: an ``argmax`` node, the index of the largest of N values taken
as they arrive; the label leaves ``LATENCY`` = 1 cycle after the last value."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs

LATENCY = 1
LUT_BASE = 40


@dataclass(frozen=True)
class ArgMax:
    name: str
    n_in: int
    in_dtype: DType
    out_dtype: DType

    @property
    def kind(self) -> str:
        return "argmax"


class ArgMaxKind(EngineKind):
    kind = "argmax"
    Knobs = NoKnobs
    ops = ("argmax",)
    paced = False
    balances = False

    def accepts(self, node, graph):
        return None

    def lower(self, n, low):
        x = low.types[n.inputs[0]]
        low.add(ArgMax(n.name, x.shape[0], x.dtype, n.type.dtype), low.take(n.inputs[0]))
        low.produce(n.name, n.name)

    def validate(self, e, plan):
        return None

    def outputs(self, e):
        return 1

    def lanes_in(self, e, knobs, src_lanes):
        return tuple(src_lanes)

    def lanes_out(self, e, knobs, lanes_in):
        return 1

    def cycles(self, e, knobs, lanes_in):
        return e.n_in // lanes_in[0]

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        t = ins[0][1] + LATENCY
        return t, t

    def estimate(self, e, knobs, lanes_in, sizes):
        return Cost(LUT_BASE, 0.0)

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        return None

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        return {"in_shape": [e.n_in], "out_shape": [1]}
