"""Label select: index of the largest of ``n`` values arriving ``lanes`` per beat.

Ties go to the lowest index, as in the IR. One beat per cycle; the label of an image is
registered one cycle after its last beat."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..engines.argmax import ArgMax
from ..engines.ports import OUTPUT_BYTES
from .built import Built, element, lanes_signature


class ArgMaxUnit(wiring.Component):
    def __init__(self, n: int, lanes: int, bits: int, is_signed: bool, out_bits: int):
        if n % lanes:
            raise ValueError(f"argmax: {lanes} lanes do not divide {n} values")
        self.n, self.lanes, self.bits, self.is_signed = n, lanes, bits, is_signed
        self.out_bits = max(out_bits, ceil_log2(n) or 1)
        super().__init__({"i": In(lanes_signature(element(bits, is_signed), lanes)),
                          "o": Out(lanes_signature(self.out_bits, 1))})

    @classmethod
    def from_engine(cls, e: ArgMax, knobs, artifact, ins: list, options) -> Built:
        x = ins[0]
        c = cls(e.n_in, x.length, x.elem_shape.width, x.elem_shape.signed, 8 * OUTPUT_BYTES)
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from an image's last beat to its label."""
        return 1

    def elaborate(self, platform):
        m = Module()
        shape = signed(self.bits) if self.is_signed else unsigned(self.bits)
        chunks = self.n // self.lanes
        beat = Signal(range(max(2, chunks)))
        best_v = Signal(shape)
        best_i = Signal(range(self.n))
        # best within this beat, lowest lane on ties
        vals = [self.i.payload[l] for l in range(self.lanes)]
        cand_v, cand_i = Signal(shape), Signal(range(self.n))
        cur_v, cur_i = vals[0], Signal(range(self.n))
        m.d.comb += cur_i.eq(beat * self.lanes)
        for l in range(1, self.lanes):
            better = vals[l] > cur_v
            nv, ni = Signal(shape, name=f"bv{l}"), Signal(range(self.n), name=f"bi{l}")
            m.d.comb += [nv.eq(Mux(better, vals[l], cur_v)), ni.eq(Mux(better, beat * self.lanes + l, cur_i))]
            cur_v, cur_i = nv, ni
        m.d.comb += [cand_v.eq(cur_v), cand_i.eq(cur_i)]
        take = (beat == 0) | (cand_v > best_v)
        new_i = Mux(take, cand_i, best_i)

        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [best_v.eq(Mux(take, cand_v, best_v)), best_i.eq(new_i)]
            with m.If(beat == chunks - 1):
                m.d.sync += [beat.eq(0), self.o.payload.eq(new_i), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
