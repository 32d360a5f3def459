"""Stream width converter: lanes of ``bits``-bit elements (or elements of a given shape),
``n_in`` lanes per input beat to ``n_out`` per output beat, lane 0 first, at full rate on the
narrower side."""

import math

from amaranth.hdl import Array, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .built import lanes_signature


class WidthConverter(wiring.Component):
    def __init__(self, bits, n_in: int, n_out: int):
        elem = Shape.cast(bits)
        for name, v in (("bits", elem.width), ("n_in", n_in), ("n_out", n_out)):
            if v < 1:
                raise ValueError(f"width converter {name} must be positive, not {v}")
        self.elem, self.bits, self.n_in, self.n_out = elem, elem.width, n_in, n_out
        super().__init__({"i": In(lanes_signature(elem, n_in)), "o": Out(lanes_signature(elem, n_out))})

    def elaborate(self, platform):
        m = Module()
        a, b = self.n_in, self.n_out
        if a == b:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
        elif b % a == 0:
            m.submodules.gather = g = _Gather(self.elem, a, b // a)
            wiring.connect(m, wiring.flipped(self.i), g.i)
            wiring.connect(m, g.o, wiring.flipped(self.o))
        elif a % b == 0:
            m.submodules.split = s = _Split(self.elem, b, a // b)
            wiring.connect(m, wiring.flipped(self.i), s.i)
            wiring.connect(m, s.o, wiring.flipped(self.o))
        else:
            lcm = math.lcm(a, b)
            m.submodules.gather = g = _Gather(self.elem, a, lcm // a)
            m.submodules.split = s = _Split(self.elem, b, lcm // b)
            wiring.connect(m, wiring.flipped(self.i), g.i)
            wiring.connect(m, g.o, s.i)
            wiring.connect(m, s.o, wiring.flipped(self.o))
        return m


class _Gather(wiring.Component):
    """k narrow beats of ``lanes`` elements -> one wide beat."""

    def __init__(self, elem, lanes: int, k: int):
        self.piece, self.k = elem.width * lanes, k
        super().__init__({"i": In(lanes_signature(elem, lanes)), "o": Out(lanes_signature(elem, lanes * k))})

    def elaborate(self, platform):
        m = Module()
        p, k = self.piece, self.k
        parts = Signal(p * (k - 1))
        count = Signal(range(k))
        completes = count == k - 1
        m.d.comb += self.i.ready.eq(~completes | ~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(completes):
                m.d.sync += [self.o.payload.eq(self.i.payload.as_value().shift_left(p * (k - 1)) | parts),
                             self.o.valid.eq(1), count.eq(0)]
            with m.Else():
                m.d.sync += [parts.word_select(count, p).eq(self.i.payload), count.eq(count + 1)]
        return m


class _Split(wiring.Component):
    """One wide beat -> k narrow beats of ``lanes`` elements."""

    def __init__(self, elem, lanes: int, k: int):
        self.piece, self.k = elem.width * lanes, k
        super().__init__({"i": In(lanes_signature(elem, lanes * k)), "o": Out(lanes_signature(elem, lanes))})

    def elaborate(self, platform):
        m = Module()
        p, k = self.piece, self.k
        hold = Signal(p * k)
        full = Signal()
        count = Signal(range(k))
        done = self.o.ready & (count == k - 1)
        m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(Array(hold[j * p:(j + 1) * p] for j in range(k))[count]),
                     self.i.ready.eq(~full | done)]
        with m.If(full & self.o.ready):
            m.d.sync += count.eq(0 if k == 1 else count + 1)
            with m.If(count == k - 1):
                m.d.sync += [count.eq(0), full.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [hold.eq(self.i.payload), full.eq(1), count.eq(0)]
        return m
