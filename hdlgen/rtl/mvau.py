"""Matrix-vector-activation unit: a folded XNOR-popcount (or integer) PE array with its
weight ROM, accumulators and threshold unit.

Two accumulator organisations, chosen by ``accumulator``; both compute the same results in
the same order, at NF*SF cycles per input vector at steady state, from the same memory images
(weight word ``nf*SF + sf``, threshold word ``nf``):

``"shared"`` (the default): output-stationary. The engine loops over neuron folds ``nf``
(outer) and synapse folds ``sf`` (inner), one step per cycle, and each PE has one accumulator
register, as wide as the layer's accumulator type (:func:`~hdlgen.pack.mvau.hw_accumulator`),
reused by every neuron fold. With one neuron fold, input chunks are used as they arrive. With
several, the input vector goes into a ping-pong buffer: one bank receives the next vector
while the folds read the other, so receiving never holds up computing and the engine runs at
NF*SF cycles per vector whatever the rate its input arrives at (as long as that is not slower).

``"per-output"``: input-stationary. The loops are swapped: synapse folds ``sf`` outer, neuron
folds ``nf`` inner. Each input chunk is registered as it arrives and used at once by the NF
neuron folds in NF consecutive steps (the weight address steps by SF within a chunk and
returns to ``sf + 1`` for the next, additions only), so there is no input buffer; instead
every output neuron has its own accumulator register of the same width, NF*PE in all. Per PE
the NF registers form a ring that rotates by one on every step, so the head is always the
accumulator of the fold being computed and the fold just updated lands in the tail: no
multiplexer picks an accumulator by ``nf``. The engine takes one input chunk per NF cycles.
With NF = 1 both organisations are the same circuit.

Step pipeline (each line one register stage)::

    issue   weight/threshold/input-buffer addresses (or the input chunk registered)
    s1      per-PE partial sums of SIMD products (popcount of XNOR for binary inputs)
    s2      accumulate; on the last synapse fold, result and thresholds registered
    s3      compare with the thresholds, write the result into the output FIFO

Flow control is by credit: a step on the last synapse fold (one that completes a neuron)
issues only while fewer than ``FIFO_DEPTH`` results are issued and not yet taken by the next
stage, so the pipeline never needs to stall once a step is issued. A result can be taken
downstream ``LATENCY`` cycles after its step issued.

Latency, with the last input chunk of a vector accepted at cycle ``L``, and output always
ready: ``"shared"`` with NF > 1 starts the vector's folds once all of it is buffered, so its
results leave at ``L + SF + LATENCY`` .. ``L + NF*SF + LATENCY`` (one per SF cycles);
``"per-output"`` issues the steps of the last chunk from ``L`` on, so its results leave at
``L + LATENCY`` .. ``L + NF - 1 + LATENCY`` (one per cycle, all at the end of the vector). If
the input arrives faster than one chunk per NF cycles, ``"per-output"`` holds it back: its
first chunk's cycle ``F`` then sets ``L = F + NF*(SF - 1)``. With NF = 1 both give
``L + LATENCY``.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..engines.mvau import MVAU, MvauFold, MvauImage, hw_accumulator
from .arith import tree_sum
from .built import Built, element, lanes_signature
from .popcount import popcount_of
from .pingpong import PingPong
from .rom import Rom

FIFO_DEPTH = 8
LATENCY = 5  # issue -> s1 -> s2 -> s3 -> FIFO -> readable
ACCUMULATORS = ("shared", "per-output")


def shape_of(dtype):
    return signed(dtype.bits) if dtype.signed else unsigned(dtype.bits)


class MvauEngine(wiring.Component):
    def __init__(self, e: MVAU, f: MvauFold, image: MvauImage, external: bool, *,
                 accumulator: str = "shared"):
        if e.w_dtype.kind != "bipolar":
            raise ValueError(f"layer {e.name}: only bipolar weights are supported, not {e.w_dtype}")
        if accumulator not in ACCUMULATORS:
            raise ValueError(f"layer {e.name}: accumulator must be one of {', '.join(ACCUMULATORS)}, "
                             f"not {accumulator!r}")
        self.e, self.f, self.image, self.external = e, f, image, external
        self.accumulator = accumulator
        self.nf, self.sf = e.n_out // f.pe, e.n_in // f.simd
        self.acc = hw_accumulator(e)
        self.in_bits = e.in_dtype.bits
        self.out_bits = e.out_dtype.bits if e.threshold else self.acc.dtype.bits
        out_signed = (not e.threshold) and self.acc.dtype.signed
        super().__init__({
            "i": In(lanes_signature(element(self.in_bits, e.in_dtype.signed), f.simd)),
            "o": Out(lanes_signature(element(self.out_bits, out_signed), f.pe)),
        })

    @classmethod
    def from_engine(cls, e: MVAU, f: MvauFold, image: MvauImage, ins: list, options) -> Built:
        c = cls(e, f, image, options.external, accumulator=options.accumulator)
        return Built(c, [c.i], [c.o])

    @property
    def latency(self) -> int:
        """Cycles from a step's issue to its result being readable downstream."""
        return LATENCY

    @property
    def accumulator_registers(self) -> int:
        """Accumulator registers of the engine (each ``self.acc.dtype.bits`` wide)."""
        return self.f.pe * (self.nf if self.accumulator == "per-output" else 1)

    def _partial(self, m, x, w, pe):
        """Sum over SIMD lanes of weight x input for one PE (combinational)."""
        simd = self.f.simd
        wpe = w[pe * simd:(pe + 1) * simd]
        if self.acc.popcount:
            agree = Signal(simd, name=f"agree{pe}")
            m.d.comb += agree.eq(~(x ^ wpe))
            return popcount_of(m, agree, simd, self.external, f"count{pe}")
        xs = self.e.in_dtype
        lanes = []
        for s in range(simd):
            v = x[s * xs.bits:(s + 1) * xs.bits]
            v = v.as_signed() if xs.signed else v
            lanes.append(Mux(wpe[s], v, -v))
        return tree_sum(lanes)

    def _issue_shared(self, m, credit, last_sf, last_step, nf_i, sf_i, waddr):
        """nf outer, sf inner; returns (go, input chunk as seen in s1)."""
        nf, sf, chunk = self.nf, self.sf, self.f.simd * self.in_bits
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
        with m.If(go):
            m.d.sync += waddr.eq(Mux(waddr == nf * sf - 1, 0, waddr + 1))
            with m.If(last_sf):
                m.d.sync += sf_i.eq(0)
                m.d.sync += nf_i.eq(Mux(nf_i == nf - 1, 0, nf_i + 1))
            with m.Else():
                m.d.sync += sf_i.eq(sf_i + 1)
        return go, x1

    def _issue_per_output(self, m, credit, last_sf, last_step, nf_i, sf_i, waddr):
        """sf outer, nf inner; returns (go, input chunk as seen in s1)."""
        nf, sf, chunk = self.nf, self.sf, self.f.simd * self.in_bits
        first_nf, last_nf = nf_i == 0, nf_i == nf - 1
        # A chunk is taken by the first neuron fold's step and held for the other NF-1.
        go = credit & (self.i.valid | ~first_nf)
        m.d.comb += self.i.ready.eq(credit & first_nf)
        s1_x = Signal(chunk)
        with m.If(go & first_nf):
            m.d.sync += s1_x.eq(self.i.payload)
        with m.If(go):
            with m.If(last_nf):
                m.d.sync += [nf_i.eq(0), sf_i.eq(Mux(last_sf, 0, sf_i + 1)),
                             waddr.eq(Mux(last_sf, 0, sf_i + 1))]   # word (0, sf + 1)
            with m.Else():
                m.d.sync += [nf_i.eq(nf_i + 1), waddr.eq(waddr + sf)]  # word (nf + 1, sf)
        return go, s1_x

    def elaborate(self, platform):
        m = Module()
        e, f, nf, sf = self.e, self.f, self.nf, self.sf
        accs = shape_of(self.acc.dtype)
        per_output = self.accumulator == "per-output"

        # --- memories ---------------------------------------------------------------------
        m.submodules.weights = wrom = Rom(self.image.weight_width, self.image.weight_words,
                                          f"{e.name}_weights.mem", self.external)
        has_thr = bool(self.image.thr_words)
        if has_thr:
            m.submodules.thresholds = trom = Rom(self.image.thr_width, self.image.thr_words,
                                                 f"{e.name}_thresholds.mem", self.external)

        # --- issue --------------------------------------------------------------------------
        chunk = f.simd * self.in_bits
        nf_i = Signal(range(max(2, nf)))  # never zero-width, for clean Verilog
        sf_i = Signal(range(max(2, sf)))
        waddr = Signal(range(max(2, nf * sf)))
        last_sf = sf_i == sf - 1
        last_step = last_sf & (nf_i == nf - 1)
        pending = Signal(range(FIFO_DEPTH + 1))  # results issued, not yet taken downstream
        credit = ~last_sf | (pending < FIFO_DEPTH)
        issue = self._issue_per_output if per_output else self._issue_shared
        go, x1 = issue(m, credit, last_sf, last_step, nf_i, sf_i, waddr)

        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        m.d.comb += wrom.addr.eq(waddr)
        if has_thr:
            m.d.comb += trom.addr.eq(nf_i)
        m.d.sync += s1_valid.eq(go)
        with m.If(go):
            m.d.sync += [s1_first.eq(sf_i == 0), s1_last.eq(last_sf)]

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
        s3_valid = Signal()
        s3_thr = Signal(max(1, tw))
        m.d.sync += s3_valid.eq(s2_valid & s2_last)
        with m.If(s2_valid & s2_last):
            m.d.sync += s3_thr.eq(s2_thr)
        if per_output and nf > 1:
            # ring[p][0] holds the fold in s2; the updated sum goes to ring[p][nf-1], where
            # s3 finds a finished neuron the next cycle.
            ring = [[Signal(accs, name=f"acc{p}_{j}") for j in range(nf)] for p in range(f.pe)]
            with m.If(s2_valid):
                for p in range(f.pe):
                    m.d.sync += [ring[p][j].eq(ring[p][j + 1]) for j in range(nf - 1)]
                    m.d.sync += ring[p][nf - 1].eq(Mux(s2_first, 0, ring[p][0]) + partials[p])
            accumulators = [ring[p][nf - 1] for p in range(f.pe)]
        else:
            accumulators = [Signal(accs, name=f"acc{p}") for p in range(f.pe)]
            with m.If(s2_valid):
                for p in range(f.pe):
                    m.d.sync += accumulators[p].eq(Mux(s2_first, 0, accumulators[p]) + partials[p])

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
