"""Values to memory words and ``.mem`` files, and back.

Bit and lane order is defined here and nowhere else: element ``i`` of a word of elements
``b`` bits wide occupies bits ``i*b .. i*b+b-1`` (element 0 in the least significant bits).
Each engine kind lays out its own memories with these (e.g. :mod:`hdlgen.engines.mvau`).
"""

from .encoding import decode, encode, join_words, split_words
from .memfile import read_mem, write_mem

__all__ = ["decode", "encode", "join_words", "split_words", "read_mem", "write_mem"]
