"""Fork, model side: copies every beat of a tensor read by several nodes to each reader. The
planner places one wherever a tensor has more than one reader.

One beat per cycle on every port, no added latency (the copies are combinational).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs

LATENCY = 0
LUT_BASE = 4


@dataclass(frozen=True)
class Fork:
    name: str            # "<tensor>_fork"
    ways: int
    size: int            # values per image
    dtype: DType

    @property
    def kind(self) -> str:
        return "fork"


class ForkKind(EngineKind):
    kind = "fork"
    Knobs = NoKnobs
    ops = ()
    paced = False
    balances = False

    def validate(self, e, plan):
        return None

    def outputs(self, e):
        return e.ways

    def lanes_in(self, e, knobs, src_lanes):
        return tuple(src_lanes)

    def lanes_out(self, e, knobs, lanes_in):
        return lanes_in[0]

    def cycles(self, e, knobs, lanes_in):
        return e.size // lanes_in[0]

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        return ins[0]

    def estimate(self, e, knobs, lanes_in, sizes):
        return Cost(LUT_BASE, 0.0)

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        return None

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        return {"in_shape": [e.size], "out_shape": [e.size * e.ways]}
