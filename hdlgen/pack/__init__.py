"""Weights and thresholds to memory words in engine order, and back.

Bit and lane order is defined here and nowhere else: element ``i`` of a word of elements
``b`` bits wide occupies bits ``i*b .. i*b+b-1`` (element 0 in the least significant bits).
"""

from .encoding import decode, encode, join_words, split_words
from .memfile import read_mem, write_mem
from .mvau import HwAccumulator, MvauImage, hw_accumulator, pack_mvau, pack_thresholds, unpack_mvau

__all__ = ["decode", "encode", "join_words", "split_words", "read_mem", "write_mem",
           "HwAccumulator", "MvauImage", "hw_accumulator", "pack_mvau", "pack_thresholds", "unpack_mvau"]
