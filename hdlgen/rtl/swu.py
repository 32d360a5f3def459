"""Sliding-window unit: the K x K window of every output pixel of an image, pixel by pixel.

Input: one pixel per beat (``c`` elements of ``bits`` bits, element 0 in the lowest bits),
the image row by row. Output: for every output pixel ``(y, x)`` in row-major order, the
pixels ``in[S*y + ky - P, S*x + kx - P]`` for ``ky`` (outer) and ``kx`` (inner) in
``0 .. K-1``, one per beat; a position outside the image carries ``pad_code`` in each element.

The image is held in a frame buffer of two banks of ``h*w`` words: one bank receives the
next image while the windows of the previous one are read from the other, so both sides run
at one beat per cycle. The first output beat of an image is valid ``LATENCY`` = 2 cycles after
its last input beat was accepted (bank handover, memory read); at steady state an image takes
``max(h*w, h'*w'*k*k)`` cycles, with ``h' = (h + 2*pad - k)//stride + 1`` and likewise ``w'``.
"""

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..engines.swu import SWU
from .built import Built, lanes_signature
from .pingpong import PingPong

LATENCY = 2


class SlidingWindow(wiring.Component):
    def __init__(self, h: int, w: int, c: int, bits, k: int, stride: int = 1, pad: int = 0, pad_code: int = 0):
        """``bits``: the elements' width, or their shape (e.g. ``signed(4)``)."""
        elem = Shape.cast(bits)
        bits = elem.width
        for name, v, lo in (("h", h, 1), ("w", w, 1), ("c", c, 1), ("bits", bits, 1), ("k", k, 1),
                            ("stride", stride, 1), ("pad", pad, 0)):
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"sliding window {name} must be an integer >= {lo}, not {v!r}")
        if pad >= k:
            raise ValueError(f"sliding window pad {pad} must be smaller than the kernel {k}")
        if not 0 <= pad_code < (1 << bits):
            raise ValueError(f"sliding window pad_code {pad_code} does not fit {bits} bits")
        self.h, self.w, self.c, self.bits, self.k, self.stride, self.pad = h, w, c, bits, k, stride, pad
        self.pad_code = pad_code
        self.out_h = (h + 2 * pad - k) // stride + 1
        self.out_w = (w + 2 * pad - k) // stride + 1
        if self.out_h < 1 or self.out_w < 1:
            raise ValueError(f"sliding window: kernel {k} with pad {pad} does not fit a {h}x{w} image")
        super().__init__({"i": In(lanes_signature(elem, c)), "o": Out(lanes_signature(elem, c))})

    @classmethod
    def from_engine(cls, e: SWU, knobs, artifact, ins: list, options) -> Built:
        win = e.window
        c = cls(win.h, win.w, win.c, ins[0].elem_shape, win.k, win.stride, win.pad, e.pad_code)
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from an image's last input beat to its first output beat."""
        return LATENCY

    @property
    def cycles_per_image(self) -> int:
        return max(self.h * self.w, self.out_h * self.out_w * self.k * self.k)

    def elaborate(self, platform):
        m = Module()
        h, w, k, s, p = self.h, self.w, self.k, self.stride, self.pad
        oh, ow = self.out_h, self.out_w
        hw = h * w
        width = self.c * self.bits
        m.submodules.frame = mem = memory.Memory(shape=width, depth=2 * hw, init=[])
        wport, rport = mem.write_port(), mem.read_port()

        # --- write side: one pixel per beat into the free bank -------------------------------
        m.submodules.banks = banks = PingPong()
        widx = Signal(range(max(2, hw)))
        accept = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(banks.can_write), banks.write_done.eq(accept & (widx == hw - 1)),
                     wport.addr.eq(Mux(banks.wbank, hw, 0) + widx), wport.data.eq(self.i.payload),
                     wport.en.eq(accept)]
        with m.If(accept):
            m.d.sync += widx.eq(Mux(widx == hw - 1, 0, widx + 1))

        # --- read side: window positions of the full bank ------------------------------------
        coord = signed(max(h, w, oh * s, ow * s).bit_length() + k.bit_length() + 2)
        oy, ox = Signal(range(max(2, oh))), Signal(range(max(2, ow)))
        ky, kx = Signal(range(max(2, k))), Signal(range(max(2, k)))
        by, bx = Signal(coord, init=-p), Signal(coord, init=-p)   # S*oy - P, S*ox - P
        iy, ix = Signal(coord), Signal(coord)
        m.d.comb += [iy.eq(by + ky), ix.eq(bx + kx)]
        # Addresses by additions alone (no multiplier): row = base + iy*w, with ``base`` the
        # first word of the bank being read, so a pixel is at row + ix. At the end of a window
        # row it moves by a constant: to the next ky (+w), back to ky = 0 for the next ox
        # (-(k-1)*w), or to the next oy's first row ((s-k+1)*w); at the end of an image to the
        # other bank (rbank flips at the same edge).
        rows = signed(((max(h, oh * s) + k + p + 1) * w + hw).bit_length() + 1)
        row, row_step = Signal(rows, init=-p * w), Signal(rows)
        m.d.comb += row_step.eq(Mux(ky != k - 1, w, Mux(ox != ow - 1, (1 - k) * w, (s + 1 - k) * w)))
        inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        advance = ~self.o.valid | self.o.ready
        issue = advance & banks.can_read
        m.d.comb += [rport.en.eq(advance),
                     rport.addr.eq((row + ix).as_unsigned()[:len(rport.addr)])]
        pad_r = Signal()
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(issue), pad_r.eq(~inside)]
        with m.If(issue):
            with m.If(kx == k - 1):
                m.d.sync += [kx.eq(0), row.eq(row + row_step)]
                with m.If(ky == k - 1):
                    m.d.sync += ky.eq(0)
                    with m.If(ox == ow - 1):
                        m.d.sync += [ox.eq(0), bx.eq(-p)]
                        with m.If(oy == oh - 1):
                            m.d.sync += [oy.eq(0), by.eq(-p), row.eq(Mux(banks.rbank, 0, hw) - p * w)]
                            m.d.comb += banks.read_done.eq(1)
                        with m.Else():
                            m.d.sync += [oy.eq(oy + 1), by.eq(by + s)]
                    with m.Else():
                        m.d.sync += [ox.eq(ox + 1), bx.eq(bx + s)]
                with m.Else():
                    m.d.sync += ky.eq(ky + 1)
            with m.Else():
                m.d.sync += kx.eq(kx + 1)
        pad_word = Const(int(sum(self.pad_code << (self.bits * j) for j in range(self.c))), width)
        m.d.comb += self.o.payload.eq(Mux(pad_r, pad_word, rport.data))
        return m
