"""Max pooling: a sliding window (no padding) followed by an element-wise max over each
window's K*K beats.

For bipolar codes (1 = +1, 0 = -1) the unsigned max of the codes is the max of the values.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..engines.maxpool import MaxPool
from .built import Built, element, lanes_signature
from .swu import SlidingWindow


class WindowReduce(wiring.Component):
    """Element-wise max of every ``kk`` consecutive beats of ``c`` elements of ``bits`` bits.

    One input beat per cycle; a window's max is valid one cycle after its last beat."""

    def __init__(self, c: int, bits: int, kk: int, is_signed: bool = False):
        for name, v in (("c", c), ("bits", bits), ("kk", kk)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"window reduce {name} must be a positive integer, not {v!r}")
        self.c, self.bits, self.kk, self.is_signed = c, bits, kk, is_signed
        elem = element(bits, is_signed)
        super().__init__({"i": In(lanes_signature(elem, c)), "o": Out(lanes_signature(elem, c))})

    @property
    def latency(self) -> int:
        """Cycles from a window's last beat to its max."""
        return 1

    def elaborate(self, platform):
        m = Module()
        c, b, kk = self.c, self.bits, self.kk
        best = Signal(c * b)
        count = Signal(range(max(2, kk)))
        first = count == 0

        def lane(v, j):
            x = v[j * b:(j + 1) * b]
            return x.as_signed() if self.is_signed else x

        x = self.i.payload.as_value()
        merged = Cat(*[Mux(first | (lane(x, j) > lane(best, j)), x[j * b:(j + 1) * b], best[j * b:(j + 1) * b])
                       for j in range(c)])
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += best.eq(merged)
            with m.If(count == kk - 1):
                m.d.sync += [count.eq(0), self.o.payload.eq(merged), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class MaxPoolUnit(wiring.Component):
    """``k`` x ``k`` max pooling at ``stride`` over an (h, w, c) image, one pixel per beat in
    and out. At steady state ``max(h*w, h'*w'*k*k)`` cycles per image; a pooled pixel leaves
    ``2 + k*k`` cycles after its window's first beat could be read (see :mod:`.swu`)."""

    def __init__(self, h: int, w: int, c: int, bits: int, k: int, stride: int, is_signed: bool = False):
        self.swu = SlidingWindow(h, w, c, element(bits, is_signed), k, stride, 0, 0)
        self.reduce = WindowReduce(c, bits, k * k, is_signed)
        super().__init__({"i": In(lanes_signature(element(bits, is_signed), c)),
                          "o": Out(lanes_signature(element(bits, is_signed), c))})

    @classmethod
    def from_engine(cls, e: MaxPool, knobs, artifact, ins: list, options) -> Built:
        win, x = e.window, ins[0]
        c = cls(win.h, win.w, win.c, x.elem_shape.width, win.k, win.stride, x.elem_shape.signed)
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from an image's last input beat to the end of its first window (whose max
        then leaves after K*K - 1 more beats)."""
        return self.swu.latency + self.reduce.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.swu, m.submodules.reduce = self.swu, self.reduce
        wiring.connect(m, wiring.flipped(self.i), self.swu.i)
        wiring.connect(m, self.swu.o, self.reduce.i)
        wiring.connect(m, self.reduce.o, wiring.flipped(self.o))
        return m
