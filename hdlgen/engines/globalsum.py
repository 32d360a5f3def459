"""Global pooling, model side: a ``globalsum`` node, one sum per channel over an image's
pixels, one pixel per cycle; the sums leave ``LATENCY`` = 1 cycle after the last pixel."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs

LATENCY = 1
LUT_BASE = 4
LUT_PER_SUM_BIT = 1.2


@dataclass(frozen=True)
class GlobalSum:
    name: str
    pixels: int          # H*W
    channels: int
    in_dtype: DType
    out_dtype: DType

    @property
    def kind(self) -> str:
        return "globalsum"


class GlobalSumKind(EngineKind):
    kind = "globalsum"
    Knobs = NoKnobs
    ops = ("globalsum",)
    paced = False
    balances = False

    def accepts(self, node, graph):
        return None

    def lower(self, n, low):
        x = low.types[n.inputs[0]]
        h, w, c = x.shape
        low.add(GlobalSum(n.name, h * w, c, x.dtype, n.type.dtype), low.take(n.inputs[0]))
        low.produce(n.name, n.name)

    def validate(self, e, plan):
        return None

    def outputs(self, e):
        return 1

    def lanes_in(self, e, knobs, src_lanes):
        return (e.channels,)

    def lanes_out(self, e, knobs, lanes_in):
        return e.channels

    def cycles(self, e, knobs, lanes_in):
        return e.pixels

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        t = ins[0][1] + LATENCY
        return t, t

    def estimate(self, e, knobs, lanes_in, sizes):
        return Cost(LUT_BASE + e.channels * e.out_dtype.bits * LUT_PER_SUM_BIT, 0.0)

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        return None

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        return {"in_shape": [e.pixels * e.channels], "out_shape": [e.channels]}
