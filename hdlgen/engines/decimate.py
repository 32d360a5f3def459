"""Decimator, model side: keeps pixel (S*y, S*x) of an (h, w, c) image for every output pixel
(y, x), the input of a 1x1 convolution with stride S (placed by the :mod:`.mvau` kind).

One input pixel per cycle: H*W cycles per image. The kept pixels wait in a one-row FIFO and
leave ``LATENCY`` cycles after they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs, Window

LATENCY = 2
LUT_BASE = 20


@dataclass(frozen=True)
class Decimate:
    name: str            # "<conv>_dec"
    window: Window       # k = 1, pad 0
    dtype: DType

    @property
    def kind(self) -> str:
        return "decimate"


class DecimateKind(EngineKind):
    kind = "decimate"
    Knobs = NoKnobs
    ops = ()
    paced = True
    balances = False

    def validate(self, e, plan):
        return None

    def outputs(self, e):
        return 1

    def lanes_in(self, e, knobs, src_lanes):
        return (e.window.c,)

    def lanes_out(self, e, knobs, lanes_in):
        return e.window.c

    def cycles(self, e, knobs, lanes_in):
        return e.window.in_beats

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        first, last = ins[0]
        return first + LATENCY, last + LATENCY

    def estimate(self, e, knobs, lanes_in, sizes):
        return Cost(LUT_BASE, 0.0)

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        return None

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        win = e.window
        return {"in_shape": [win.h, win.w, win.c], "out_shape": [win.out_h, win.out_w, win.c]}
