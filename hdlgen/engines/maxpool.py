"""Max pooling, model side: a ``maxpool`` node, a sliding window (no padding) and an
element-wise max over each window's K*K beats.

max(H*W, H'*W'*K*K) cycles per image, like the sliding window it contains; a pooled pixel
leaves ``LATENCY`` = 3 cycles (window, max) after its window's last input beat could be read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs, Window
from .swu import LATENCY as SWU_LATENCY, frame_buffer

REDUCE_LATENCY = 1
LATENCY = SWU_LATENCY + REDUCE_LATENCY
LUT_BASE = 160


@dataclass(frozen=True)
class MaxPool:
    name: str
    window: Window       # pad 0
    dtype: DType

    @property
    def kind(self) -> str:
        return "maxpool"

    @property
    def n_in(self) -> int:
        return self.window.h * self.window.w * self.window.c


class MaxPoolKind(EngineKind):
    kind = "maxpool"
    Knobs = NoKnobs
    ops = ("maxpool",)
    paced = True
    balances = False

    def accepts(self, node, graph):
        return None

    def lower(self, n, low):
        h, w, c = low.types[n.inputs[0]].shape
        k = n.attrs["kernel"]
        win = Window(h, w, c, k, n.attrs.get("stride", k), 0)
        low.add(MaxPool(n.name, win, low.types[n.inputs[0]].dtype), low.take(n.inputs[0]))
        low.produce(n.name, n.name)

    def validate(self, e, plan):
        return None

    def outputs(self, e):
        return 1

    def lanes_in(self, e, knobs, src_lanes):
        return (e.window.c,)

    def lanes_out(self, e, knobs, lanes_in):
        return e.window.c

    def cycles(self, e, knobs, lanes_in):
        return max(e.window.in_beats, e.window.out_beats)

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        start = ins[0][1] + LATENCY
        return start + e.window.k * e.window.k - 1, start + e.window.out_beats - 1

    def estimate(self, e, knobs, lanes_in, sizes):
        return Cost(LUT_BASE, frame_buffer(e.window, e.dtype))

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        return None

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        win = e.window
        return {"in_shape": [win.h, win.w, win.c], "out_shape": [win.out_h, win.out_w, win.c]}
