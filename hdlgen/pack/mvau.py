"""Memory images of an MVAU: weight words and threshold words in the order the engine reads.

Neuron ``m = nf*PE + p`` is computed by PE ``p`` in neuron fold ``nf``; input ``n = sf*SIMD + s``
is lane ``s`` of synapse fold ``sf``. Weight word ``nf*SF + sf`` holds, at element
``p*SIMD + s``, the weight ``W[m, n]``. Threshold word ``nf`` holds, at element ``p*L + l``,
threshold ``l`` of neuron ``m``, in the engine's own accumulator domain
(:func:`hw_accumulator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fold.folding import LayerFold
from ..fold.plan import MVAU
from ..ir import DType
from .encoding import decode, encode, join_words, split_words


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
    weight_words: list
    weight_width: int
    thr_words: list   # empty when the engine has no thresholds
    thr_width: int
    levels: int


def pack_mvau(e: MVAU, f: LayerFold, weight: np.ndarray, thresholds: np.ndarray | None) -> MvauImage:
    nf, sf = e.n_out // f.pe, e.n_in // f.simd
    wb = e.w_dtype.bits
    codes = encode(weight, e.w_dtype).reshape(nf, f.pe, sf, f.simd).transpose(0, 2, 1, 3)
    wwords = join_words(codes.reshape(nf * sf, f.pe * f.simd), wb)
    twords, tw, levels = [], 0, 0
    if thresholds is not None:
        levels = thresholds.shape[1]
        twords, tw = pack_thresholds(e, f, thresholds)
    return MvauImage(wwords, f.pe * f.simd * wb, twords, tw, levels)


def pack_thresholds(e: MVAU, f: LayerFold, thresholds: np.ndarray) -> tuple:
    """(words, width) of thresholds (N', L) on the accumulators of MVAU ``e``: word ``nf``
    holds, at element ``p*L + l``, threshold ``l`` of neuron ``nf*PE + p`` in the engine's
    accumulator domain. A threshold select's (N', 2) thresholds use the same layout."""
    acc = hw_accumulator(e)
    nf, levels = e.n_out // f.pe, thresholds.shape[1]
    t = acc.from_ir(thresholds, e.n_in)
    tw = acc.thr_dtype.bits
    return join_words(encode(t, acc.thr_dtype).reshape(nf, f.pe * levels), tw), f.pe * levels * tw


def unpack_mvau(e: MVAU, f: LayerFold, image: MvauImage):
    """(weight, thresholds or None) in IR form from a memory image."""
    nf, sf = e.n_out // f.pe, e.n_in // f.simd
    codes = split_words(image.weight_words, f.pe * f.simd, e.w_dtype.bits)
    weight = decode(codes.reshape(nf, sf, f.pe, f.simd).transpose(0, 2, 1, 3).reshape(e.n_out, e.n_in), e.w_dtype)
    if not image.thr_words:
        return weight, None
    acc = hw_accumulator(e)
    t = decode(split_words(image.thr_words, f.pe * image.levels, acc.thr_dtype.bits), acc.thr_dtype)
    return weight, acc.to_ir(t.reshape(e.n_out, image.levels), e.n_in)
