"""Delay FIFO, model side: whole pixels (``channels`` values per beat) of a residual network's
shortcut, waiting for the main branch (placed by the :mod:`.select` kind).

Its depth is not a knob but a size the cycle model derives
(:func:`hdlgen.fold.timeline.delay_depths`): what the other branch's latency needs, plus one
image. One pixel per cycle; a beat is readable ``LATENCY`` cycles after it enters.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs, bram36

LATENCY = 2
LUT_BASE = 40


@dataclass(frozen=True)
class Delay:
    name: str            # "<select_threshold node>_delay"
    pixels: int          # pixels per image
    channels: int
    dtype: DType

    @property
    def kind(self) -> str:
        return "delay"


class DelayKind(EngineKind):
    kind = "delay"
    Knobs = NoKnobs
    ops = ()
    paced = False
    balances = True

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
        first, last = ins[0]
        return first + LATENCY, last + LATENCY

    def estimate(self, e, knobs, lanes_in, sizes):
        return Cost(LUT_BASE, bram36(e.channels * e.dtype.bits, sizes[e.name]))

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        return None

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        return {"in_shape": [e.pixels * e.channels], "out_shape": [e.pixels * e.channels]}
