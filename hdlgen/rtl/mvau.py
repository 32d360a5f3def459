"""Matrix-vector-activation unit: a folded XNOR-popcount (or integer) PE array with its
weight ROM, accumulators and threshold unit.

The engine loops over neuron folds ``nf`` (outer) and synapse folds ``sf`` (inner), one step
per cycle. With one neuron fold, input chunks are used as they arrive. With several, the input
vector goes into a ping-pong buffer: one bank receives the next image while the folds read
the other, so receiving never holds up computing and the engine runs at NF*SF cycles per image
whatever the rate its input arrives at (as long as that is not slower).
Step pipeline (each line one register stage)::

    issue   weight/threshold/input-buffer addresses (or the input chunk registered)
    s1      per-PE partial sums of SIMD products (popcount of XNOR for binary inputs)
    s2      accumulate; on the last synapse fold, result and thresholds registered
    s3      compare with the thresholds, write the result into the output FIFO

Flow control is by credit: a step that completes a neuron fold issues only while fewer than
``FIFO_DEPTH`` results are issued and not yet taken by the next stage, so the pipeline never
needs to stall once a step is issued. A result can be taken downstream ``LATENCY`` cycles after
its step issued; at steady state the engine takes NF*SF cycles per image.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..fold.folding import MVAU_DEPTH, LayerFold
from ..fold.plan import MVAU
from ..pack.mvau import MvauImage, hw_accumulator
from .arith import popcount, tree_sum
from .pingpong import PingPong
from .rom import Rom

FIFO_DEPTH = 8
LATENCY = MVAU_DEPTH  # issue -> s1 -> s2 -> s3 -> FIFO -> readable


def shape_of(dtype):
    return signed(dtype.bits) if dtype.signed else unsigned(dtype.bits)


class MvauEngine(wiring.Component):
    def __init__(self, e: MVAU, f: LayerFold, image: MvauImage, external: bool):
        if e.w_dtype.kind != "bipolar":
            raise ValueError(f"layer {e.name}: only bipolar weights are supported, not {e.w_dtype}")
        self.e, self.f, self.image, self.external = e, f, image, external
        self.nf, self.sf = e.n_out // f.pe, e.n_in // f.simd
        self.acc = hw_accumulator(e)
        self.in_bits = e.in_dtype.bits
        self.out_bits = e.out_dtype.bits if e.threshold else self.acc.dtype.bits
        super().__init__({
            "i": In(stream.Signature(f.simd * self.in_bits)),
            "o": Out(stream.Signature(f.pe * self.out_bits)),
        })

    def _partial(self, m, x, w, pe):
        """Sum over SIMD lanes of weight x input for one PE (combinational)."""
        simd = self.f.simd
        wpe = w[pe * simd:(pe + 1) * simd]
        if self.acc.popcount:
            agree = Signal(simd, name=f"agree{pe}")
            m.d.comb += agree.eq(~(x ^ wpe))
            return popcount(agree, simd)
        xs = self.e.in_dtype
        lanes = []
        for s in range(simd):
            v = x[s * xs.bits:(s + 1) * xs.bits]
            v = v.as_signed() if xs.signed else v
            lanes.append(Mux(wpe[s], v, -v))
        return tree_sum(lanes)

    def elaborate(self, platform):
        m = Module()
        e, f, nf, sf = self.e, self.f, self.nf, self.sf
        accs = shape_of(self.acc.dtype)

        # --- memories ---------------------------------------------------------------------
        m.submodules.weights = wrom = Rom(self.image.weight_width, self.image.weight_words,
                                          f"{e.name}_weights.mem", self.external)
        has_thr = bool(self.image.thr_words)
        if has_thr:
            m.submodules.thresholds = trom = Rom(self.image.thr_width, self.image.thr_words,
                                                 f"{e.name}_thresholds.mem", self.external)

        chunk = f.simd * self.in_bits
        nf_i = Signal(range(max(2, nf)))  # never zero-width, for clean Verilog
        sf_i = Signal(range(max(2, sf)))
        waddr = Signal(range(max(2, nf * sf)))
        last_sf = sf_i == sf - 1
        last_step = last_sf & (nf_i == nf - 1)
        pending = Signal(range(FIFO_DEPTH + 1))  # results issued, not yet taken downstream
        credit = ~last_sf | (pending < FIFO_DEPTH)
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()

        if nf == 1:
            # One neuron fold: each input chunk is used once, straight from the stream.
            go = credit & self.i.valid
            m.d.comb += self.i.ready.eq(credit)
            s1_x = Signal(chunk)
            with m.If(go):
                m.d.sync += s1_x.eq(self.i.payload)
            x1 = s1_x
        else:
            # Ping-pong input buffer: one bank receives the next image's vector while the
            # neuron folds read the other, so every fold runs at one step per cycle.
            abits = ceil_log2(sf)
            m.submodules.inbuf = buf = memory.Memory(shape=chunk, depth=2 << abits, init=[])
            wport, rport = buf.write_port(), buf.read_port()
            m.submodules.banks = banks = PingPong()
            wsf = Signal(range(max(2, sf)))
            accept = self.i.valid & self.i.ready
            go = credit & banks.can_read
            m.d.comb += [self.i.ready.eq(banks.can_write),
                         wport.addr.eq(Cat(wsf[:abits], banks.wbank)), wport.data.eq(self.i.payload),
                         wport.en.eq(accept), rport.addr.eq(Cat(sf_i[:abits], banks.rbank)),
                         banks.write_done.eq(accept & (wsf == sf - 1)), banks.read_done.eq(go & last_step)]
            with m.If(accept):
                m.d.sync += wsf.eq(Mux(wsf == sf - 1, 0, wsf + 1))
            x1 = rport.data

        m.d.comb += wrom.addr.eq(waddr)
        if has_thr:
            m.d.comb += trom.addr.eq(nf_i)
        m.d.sync += s1_valid.eq(go)
        with m.If(go):
            m.d.sync += [s1_first.eq(sf_i == 0), s1_last.eq(last_sf),
                         waddr.eq(Mux(waddr == nf * sf - 1, 0, waddr + 1))]
            with m.If(last_sf):
                m.d.sync += sf_i.eq(0)
                m.d.sync += nf_i.eq(Mux(nf_i == nf - 1, 0, nf_i + 1))
            with m.Else():
                m.d.sync += sf_i.eq(sf_i + 1)

        # --- s1: partial sums ---------------------------------------------------------------
        s2_valid, s2_first, s2_last = Signal(), Signal(), Signal()
        partials = [Signal(accs, name=f"partial{p}") for p in range(f.pe)]
        x1s = Signal(chunk)
        m.d.comb += x1s.eq(x1)
        m.d.sync += [s2_valid.eq(s1_valid), s2_first.eq(s1_first), s2_last.eq(s1_last)]
        for p in range(f.pe):
            m.d.sync += partials[p].eq(self._partial(m, x1s, wrom.data, p))
        tw = self.image.thr_width
        s2_thr = Signal(max(1, tw))
        if has_thr:
            m.d.sync += s2_thr.eq(trom.data)

        # --- s2: accumulate ---------------------------------------------------------------
        accumulators = [Signal(accs, name=f"acc{p}") for p in range(f.pe)]
        s3_valid = Signal()
        s3_thr = Signal(max(1, tw))
        m.d.sync += s3_valid.eq(s2_valid & s2_last)
        with m.If(s2_valid):
            for p in range(f.pe):
                m.d.sync += accumulators[p].eq(Mux(s2_first, 0, accumulators[p]) + partials[p])
        with m.If(s2_valid & s2_last):
            m.d.sync += s3_thr.eq(s2_thr)

        # --- s3: threshold, FIFO ----------------------------------------------------------
        if has_thr:
            levels, tb = self.image.levels, self.acc.thr_dtype.bits
            outs = []
            for p in range(f.pe):
                cmp = [accumulators[p] >= s3_thr[(p * levels + l) * tb:(p * levels + l + 1) * tb].as_signed()
                       if self.acc.thr_dtype.signed else
                       accumulators[p] >= s3_thr[(p * levels + l) * tb:(p * levels + l + 1) * tb]
                       for l in range(levels)]
                outs.append(Cat(*cmp) if levels == 1 else tree_sum(cmp))
            result = Cat(*[o.as_unsigned()[:self.out_bits] if levels > 1 else o for o in outs])
        else:
            result = Cat(*accumulators)
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=f.pe * self.out_bits, depth=FIFO_DEPTH)
        m.d.comb += [q.w_data.eq(result), q.w_en.eq(s3_valid),
                     self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready)]
        issued = go & last_sf
        taken = self.o.valid & self.o.ready
        m.d.sync += pending.eq(pending + issued - taken)
        return m
