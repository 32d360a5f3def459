"""Sliding-window unit (SWU), model side: the K x K window of every output pixel of a
convolution, one pixel per beat, in (ky, kx) order; padded positions carry ``pad_code``.

It writes an image into one bank of a frame buffer while it reads the windows of the previous
image from the other, one pixel per cycle each way: max(H*W, H'*W'*K*K) cycles per image. The
first output beat of an image leaves ``LATENCY`` cycles after its last input beat (bank
handover, memory read). The :mod:`.mvau` kind places it in front of a convolution's MVAU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType
from .base import Cost, EngineKind, Floor, NoKnobs, Window, bram36

LATENCY = 2
LUT_BASE = 120


@dataclass(frozen=True)
class SWU:
    name: str            # "<conv>_swu"
    window: Window
    dtype: DType         # element type of the image
    pad_code: int        # the encoding of the padding value

    @property
    def kind(self) -> str:
        return "swu"

    @property
    def n_in(self) -> int:
        return self.window.h * self.window.w * self.window.c


def frame_buffer(window: Window, dtype: DType) -> float:
    """BRAM36 of a two-bank frame buffer of (h, w, c) images."""
    return bram36(window.c * dtype.bits, 2 * window.h * window.w)


class SwuKind(EngineKind):
    kind = "swu"
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
        return max(e.window.in_beats, e.window.out_beats)

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        first = ins[0][1] + LATENCY
        return first, first + e.window.out_beats - 1

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
        return {"in_shape": [win.h, win.w, win.c], "out_shape": [win.out_h, win.out_w, win.k * win.k * win.c]}
