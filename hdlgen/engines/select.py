"""Threshold select, model side: a ``select_threshold`` node (a binarized residual add), +1
where an MVAU's raw accumulator reaches the threshold its select value (the shortcut, +-1)
chooses. The shortcut waits in a :mod:`.delay` FIFO.

It takes the MVAU's PE accumulators per beat, and as many select bits: channels*pixels/PE
cycles per image; its result is registered (``LATENCY`` 1). Thresholds are in the MVAU's
accumulator domain, laid out as the MVAU's (:func:`.mvau.threshold_words`) with two per
channel: word ``nf``, element ``2*p + s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Cost, EngineKind, Floor, MemImage, NoKnobs, bram36
from .delay import Delay
from .mvau import HwAccumulator, hw_accumulator, threshold_words

LATENCY = 1
LUT_BASE = 10
LUT_PER_ACC_BIT = 1.5


@dataclass(frozen=True)
class SelectThreshold:
    name: str            # the select_threshold node's name
    mvau: str            # the MVAU whose raw accumulators it reads
    channels: int
    pixels: int
    acc: HwAccumulator   # that MVAU's accumulator
    fan_in: int          # that MVAU's fan-in

    @property
    def kind(self) -> str:
        return "select"


@dataclass(frozen=True)
class ThresholdImage:
    file: str
    width: int
    words: list

    @property
    def memories(self) -> tuple:
        return (MemImage(self.file, self.width, self.words),)


class SelectKind(EngineKind):
    kind = "select"
    Knobs = NoKnobs
    ops = ("select_threshold",)
    paced = False
    balances = False

    def accepts(self, n, graph):
        readers = graph.consumers(n.inputs[0])
        producer = graph.node(n.inputs[0])
        if producer.op not in ("dense", "conv2d") or len(readers) != 1:
            return f"must read the accumulator of a convolution or dense layer that feeds nothing else, " \
                   f"not {n.inputs[0]!r}"
        return None

    def lower(self, n, low):
        acc, sel = n.inputs
        mvau = low.engine(acc)
        shape = n.type.shape
        pixels, c = (shape[0] * shape[1], shape[2]) if len(shape) == 3 else (1, shape[0])
        delay = low.add(Delay(f"{n.name}_delay", pixels, c, low.types[sel].dtype), low.take(sel))
        low.add(SelectThreshold(n.name, acc, c, pixels, hw_accumulator(mvau), mvau.n_in), low.stream(acc), delay)
        low.produce(n.name, n.name)

    def validate(self, e, plan):
        return None

    def outputs(self, e):
        return 1

    def lanes_in(self, e, knobs, src_lanes):
        return (src_lanes[0], src_lanes[0])

    def lanes_out(self, e, knobs, lanes_in):
        return lanes_in[0]

    def cycles(self, e, knobs, lanes_in):
        return e.pixels * e.channels // lanes_in[0]

    def depth(self, e, knobs):
        return LATENCY

    def timeline(self, e, knobs, ins):
        (f0, l0), (f1, l1) = ins
        return max(f0, f1) + LATENCY, max(l0, l1) + LATENCY

    def estimate(self, e, knobs, lanes_in, sizes):
        pe = lanes_in[0]
        return Cost(LUT_BASE + pe * e.acc.dtype.bits * LUT_PER_ACC_BIT,
                    bram36(2 * pe * e.acc.thr_dtype.bits, e.channels // pe))

    def floor(self, e, knobs):
        return Floor(0, 0)

    def pack(self, e, knobs, lanes_in, graph):
        words, width = threshold_words(e.acc, e.fan_in, lanes_in[0], graph.node(e.name).params["thresholds"])
        return ThresholdImage(f"{e.name}_thresholds.mem", width, words)

    def interfaces(self, e, knobs):
        return ()

    def describe(self, e, knobs, artifact, sizes):
        return {"in_shape": [e.pixels * e.channels], "out_shape": [e.pixels * e.channels]}
