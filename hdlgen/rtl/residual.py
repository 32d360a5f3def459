"""Engines of residual networks: stream fork, delay FIFO, threshold select, global pooling,
and the decimator (with its row FIFO) in front of a strided 1x1 convolution.

Every engine moves at most one beat per cycle on each port and follows the stream rules of
``amaranth.lib.stream``: a beat moves when ``valid`` and ``ready`` are both high.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..engines.decimate import Decimate
from ..engines.delay import Delay
from ..engines.fork import Fork as ForkSpec
from ..engines.globalsum import GlobalSum
from ..engines.select import SelectThreshold
from .built import Built, element, lanes_signature
from .rom import Rom


class Fork(wiring.Component):
    """Copies every input beat to ``ways`` outputs. A copy taken early is remembered, so each
    output may accept at its own time; the input beat leaves once every copy is taken. No
    output's ``ready`` reaches another output's ``valid``. ``payload``: the beats' shape (a
    width, or a layout)."""

    def __init__(self, payload, ways: int):
        if ways < 2:
            raise ValueError(f"a fork needs at least 2 outputs, not {ways}")
        self.payload, self.ways = payload, ways
        members = {"i": In(stream.Signature(payload))}
        members.update({f"o{k}": Out(stream.Signature(payload)) for k in range(ways)})
        super().__init__(members)

    @classmethod
    def from_engine(cls, e: ForkSpec, knobs, artifact, ins: list, options) -> Built:
        c = cls(ins[0], e.ways)
        return Built(c, [c.i], [c.output(k) for k in range(e.ways)])

    @property
    def latency(self) -> int:
        """Copies leave in the cycle their input beat arrives."""
        return 0

    def output(self, k: int):
        return getattr(self, f"o{k}")

    def elaborate(self, platform):
        m = Module()
        done = Signal(self.ways)          # copies already taken of the current beat
        outs = [self.output(k) for k in range(self.ways)]
        took = Cat(*[done[k] | outs[k].ready for k in range(self.ways)])
        m.d.comb += self.i.ready.eq(took.all())
        for k, o in enumerate(outs):
            m.d.comb += [o.payload.eq(self.i.payload), o.valid.eq(self.i.valid & ~done[k])]
        with m.If(self.i.valid):
            m.d.sync += done.eq(Mux(self.i.ready, 0, took))
        return m


class DelayFifo(wiring.Component):
    """A first-in first-out buffer of ``depth`` beats of shape ``payload`` (a width, or a
    layout; block RAM when large)."""

    def __init__(self, payload, depth: int):
        if depth < 2:
            raise ValueError(f"delay FIFO depth must be at least 2, not {depth}")
        self.payload, self.depth = payload, depth
        self.width = Shape.cast(payload).width
        super().__init__({"i": In(stream.Signature(payload)), "o": Out(stream.Signature(payload))})

    @classmethod
    def from_engine(cls, e: Delay, knobs, artifact, ins: list, options) -> Built:
        c = cls(ins[0], options.sizes[e.name])
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from a beat entering an empty FIFO to it being readable."""
        return 2

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self.width, depth=self.depth)
        m.d.comb += [q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid), self.i.ready.eq(q.w_rdy),
                     self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready)]
        return m


class SelectThresholdUnit(wiring.Component):
    """+1 (code 1) where an accumulator reaches the threshold its select bit chooses.

    Input ``i``: ``lanes`` accumulators of ``acc_bits`` per beat (channels ``nf*lanes ..`` of
    neuron fold ``nf``, folds cycling 0 .. NF-1 per pixel); input ``sel``: ``lanes`` select
    bits per beat (1 = +1), beat for beat. The thresholds of fold ``nf`` are ROM word ``nf``:
    element ``2*p + s`` is the threshold of lane ``p`` for select value ``s``. One beat per
    cycle; the result is registered (latency 1)."""

    def __init__(self, lanes: int, acc_bits: int, acc_signed: bool, thr_bits: int, thr_signed: bool,
                 words: list, file_name: str, external: bool):
        self.lanes, self.acc_bits, self.acc_signed = lanes, acc_bits, acc_signed
        self.thr_bits, self.thr_signed = thr_bits, thr_signed
        self.nf = len(words)
        self.rom = Rom(2 * lanes * thr_bits, words, file_name, external)
        super().__init__({"i": In(lanes_signature(element(acc_bits, acc_signed), lanes)),
                          "sel": In(lanes_signature(1, lanes)), "o": Out(lanes_signature(1, lanes))})

    @classmethod
    def from_engine(cls, e: SelectThreshold, knobs, image, ins: list, options) -> Built:
        x, thr = ins[0], e.acc.thr_dtype
        c = cls(x.length, x.elem_shape.width, x.elem_shape.signed, thr.bits, thr.signed, image.words, image.file,
                options.external)
        return Built(c, [c.i, c.sel], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from a beat on both inputs to its result."""
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = self.rom
        nf = Signal(range(max(2, self.nf)))
        advance = ~self.o.valid | self.o.ready
        primed = Signal()   # the ROM has read its first word (one cycle after reset)
        m.d.sync += primed.eq(1)
        take = advance & self.i.valid & self.sel.valid & primed
        m.d.comb += [self.i.ready.eq(take), self.sel.ready.eq(take)]
        nf_next = Mux(take, Mux(nf == self.nf - 1, 0, nf + 1), nf)
        m.d.sync += nf.eq(nf_next)
        # The ROM reads the next fold's word, so its output always holds the current fold's.
        m.d.comb += rom.addr.eq(nf_next)
        tb = self.thr_bits
        bits = []
        for p in range(self.lanes):
            acc = self.i.payload[p]
            t0, t1 = (rom.data[(2 * p + s) * tb:(2 * p + s + 1) * tb] for s in (0, 1))
            if self.thr_signed:
                t0, t1 = t0.as_signed(), t1.as_signed()
            bits.append(acc >= Mux(self.sel.payload[p], t1, t0))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(take)
        with m.If(take):
            m.d.sync += self.o.payload.eq(Cat(*bits))
        return m


class GlobalSumUnit(wiring.Component):
    """Per-channel sum over the ``pixels`` pixels of an image, one pixel (``channels``
    elements) per beat; bipolar codes count as +1 (code 1) and -1 (code 0). One output beat of
    ``channels`` sums of ``out_bits`` per image, registered after the image's last beat."""

    def __init__(self, pixels: int, channels: int, bits: int, kind: str, out_bits: int):
        if kind not in ("bipolar", "uint", "int"):
            raise ValueError(f"global sum of {kind} values is not supported")
        self.pixels, self.channels, self.bits, self.kind, self.out_bits = pixels, channels, bits, kind, out_bits
        super().__init__({"i": In(lanes_signature(element(bits, kind == "int"), channels)),
                          "o": Out(lanes_signature(element(out_bits, kind != "uint"), channels))})

    @classmethod
    def from_engine(cls, e: GlobalSum, knobs, artifact, ins: list, options) -> Built:
        c = cls(e.pixels, e.channels, ins[0].elem_shape.width, e.in_dtype.kind, e.out_dtype.bits)
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from an image's last pixel to its sums."""
        return 1

    def _value(self, j):
        x = self.i.payload[j]
        if self.kind == "bipolar":
            return Mux(x[0], Const(1, signed(2)), Const(-1, signed(2)))
        return x

    def elaborate(self, platform):
        m = Module()
        shape = signed(self.out_bits) if self.kind != "uint" else unsigned(self.out_bits)
        sums = [Signal(shape, name=f"sum{j}") for j in range(self.channels)]
        count = Signal(range(max(2, self.pixels)))
        last = count == self.pixels - 1
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            new = [Mux(count == 0, 0, s) + self._value(j) for j, s in enumerate(sums)]
            m.d.sync += [s.eq(v) for s, v in zip(sums, new)]
            with m.If(last):
                m.d.sync += [count.eq(0), self.o.valid.eq(1),
                             self.o.payload.eq(Cat(*[v.as_unsigned()[:self.out_bits] for v in new]))]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class Decimator(wiring.Component):
    """Passes pixel (S*y, S*x) of an h x w image for y < out_h, x < out_w and drops the others;
    one pixel per beat.

    The kept pixels come in bursts (every S-th pixel of every S-th row) while the convolution
    after it takes them at an even pace, so they wait in a FIFO of ``out_w + 2`` pixels: one
    output row, enough that the decimator never holds up the stream it reads (a fork shared
    with the main branch of a residual block) and the kept pixels leave two cycles later."""

    def __init__(self, h: int, w: int, payload, stride: int, out_h: int, out_w: int):
        """``payload``: the pixels' shape (a width, or a layout)."""
        self.h, self.w, self.stride, self.out_h, self.out_w = h, w, stride, out_h, out_w
        self.payload = payload
        super().__init__({"i": In(stream.Signature(payload)), "o": Out(stream.Signature(payload))})

    @classmethod
    def from_engine(cls, e: Decimate, knobs, artifact, ins: list, options) -> Built:
        win = e.window
        c = cls(win.h, win.w, ins[0], win.stride, win.out_h, win.out_w)
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from a kept pixel's arrival to it being readable (its row FIFO's)."""
        return 2

    def elaborate(self, platform):
        m = Module()
        s = self.stride
        m.submodules.fifo = q = DelayFifo(self.payload, self.out_w + 2)
        x, y = Signal(range(max(2, self.w))), Signal(range(max(2, self.h)))
        xs, ys = Signal(range(max(2, s))), Signal(range(max(2, s)))      # x mod S, y mod S
        ox, oy = Signal(range(self.w + 1)), Signal(range(self.h + 1))    # x // S, y // S
        keep = (xs == 0) & (ys == 0) & (ox < self.out_w) & (oy < self.out_h)
        m.d.comb += [q.i.payload.eq(self.i.payload), q.i.valid.eq(self.i.valid & keep),
                     self.i.ready.eq(~keep | q.i.ready)]
        wiring.connect(m, q.o, wiring.flipped(self.o))
        with m.If(self.i.valid & self.i.ready):
            with m.If(x == self.w - 1):
                m.d.sync += [x.eq(0), xs.eq(0), ox.eq(0)]
                with m.If(y == self.h - 1):
                    m.d.sync += [y.eq(0), ys.eq(0), oy.eq(0)]
                with m.Else():
                    m.d.sync += [y.eq(y + 1), ys.eq(Mux(ys == s - 1, 0, ys + 1)), oy.eq(oy + (ys == s - 1))]
            with m.Else():
                m.d.sync += [x.eq(x + 1), xs.eq(Mux(xs == s - 1, 0, xs + 1)), ox.eq(ox + (xs == s - 1))]
        return m
