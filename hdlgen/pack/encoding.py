"""Element encodings and packing of elements into words (Python ints of any width)."""

from __future__ import annotations

import numpy as np

from ..ir import DType


def encode(values, dtype: DType) -> np.ndarray:
    """Values -> their unsigned bit patterns (uint64): bipolar +1 -> 1, -1 -> 0; int two's complement."""
    v = np.asarray(values, dtype=np.int64)
    if not dtype.holds(v):
        raise ValueError(f"values {v.min()} .. {v.max()} do not fit {dtype}")
    if dtype.kind == "bipolar":
        return (v > 0).astype(np.uint64)
    return (v & ((1 << dtype.bits) - 1)).astype(np.uint64)


def decode(codes, dtype: DType) -> np.ndarray:
    """Bit patterns -> values; the inverse of :func:`encode`."""
    c = np.asarray(codes, dtype=np.int64)
    if dtype.kind == "bipolar":
        return np.where(c & 1, 1, -1).astype(np.int64)
    if dtype.kind == "int":
        return np.where(c >= 1 << (dtype.bits - 1), c - (1 << dtype.bits), c)
    return c


def join_words(codes: np.ndarray, bits: int) -> list:
    """(words, elements) codes -> one int per word, element 0 in the low bits."""
    codes = np.asarray(codes)
    words = []
    for row in codes.reshape(codes.shape[0], -1):
        w = 0
        for i, c in enumerate(row.tolist()):
            w |= int(c) << (i * bits)
        words.append(w)
    return words


def split_words(words, elements: int, bits: int) -> np.ndarray:
    """One int per word -> (words, elements) codes; the inverse of :func:`join_words`."""
    mask = (1 << bits) - 1
    return np.array([[(int(w) >> (i * bits)) & mask for i in range(elements)] for w in words],
                    dtype=np.int64).reshape(len(words), elements)
