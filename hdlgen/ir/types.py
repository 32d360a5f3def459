"""Element types of IR tensors.

Every value in the IR is an exact integer. A :class:`DType` says which integers a tensor may
hold and how many bits the hardware spends on each element:

- ``uint(b)``: 0 .. 2**b - 1
- ``int(b)``: two's complement, -2**(b-1) .. 2**(b-1) - 1
- ``bipolar``: the values -1 and +1 in one bit; bit 1 encodes +1, bit 0 encodes -1.

The golden model holds tensors as NumPy int64 arrays of the values themselves (so a bipolar
tensor holds -1 and +1); only :mod:`hdlgen.pack` and the RTL see encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("uint", "int", "bipolar")


@dataclass(frozen=True)
class DType:
    kind: str
    bits: int

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"dtype kind {self.kind!r} is not one of {KINDS}")
        if not isinstance(self.bits, int) or self.bits < 1:
            raise ValueError(f"dtype bits must be a positive integer, not {self.bits!r}")
        if self.kind == "bipolar" and self.bits != 1:
            raise ValueError("bipolar values take exactly 1 bit")
        if self.kind == "int" and self.bits < 2:
            raise ValueError("signed integers need at least 2 bits")

    @property
    def min(self) -> int:
        return {"uint": 0, "int": -(1 << (self.bits - 1)), "bipolar": -1}[self.kind]

    @property
    def max(self) -> int:
        return {"uint": (1 << self.bits) - 1, "int": (1 << (self.bits - 1)) - 1, "bipolar": 1}[self.kind]

    @property
    def signed(self) -> bool:
        return self.kind != "uint"

    def holds(self, values: np.ndarray) -> bool:
        """True when every element of ``values`` is a value of this type."""
        values = np.asarray(values)
        if values.size == 0:
            return True
        if self.kind == "bipolar":
            return bool(np.all(np.abs(values) == 1))
        return bool(values.min() >= self.min and values.max() <= self.max)

    def __str__(self) -> str:
        return "bipolar" if self.kind == "bipolar" else f"{self.kind}{self.bits}"

    @classmethod
    def parse(cls, text: str) -> "DType":
        if text == "bipolar":
            return cls("bipolar", 1)
        for kind in ("uint", "int"):
            if text.startswith(kind) and text[len(kind):].isdigit():
                return cls(kind, int(text[len(kind):]))
        raise ValueError(f"not a dtype: {text!r} (expected bipolar, uintN or intN)")

    @classmethod
    def for_range(cls, lo: int, hi: int) -> "DType":
        """The narrowest uint or int type that holds every integer in ``lo .. hi``."""
        lo, hi = int(lo), int(hi)
        if lo > hi:
            raise ValueError(f"empty range {lo} .. {hi}")
        if lo >= 0:
            return cls("uint", max(1, hi.bit_length()))
        bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1
        return cls("int", max(2, bits))


BIPOLAR = DType("bipolar", 1)


def uint(bits: int) -> DType:
    return DType("uint", bits)


def sint(bits: int) -> DType:
    return DType("int", bits)


@dataclass(frozen=True)
class TensorType:
    """Shape (without the batch axis) and element type. Images are (H, W, C), vectors (C,)."""

    shape: tuple
    dtype: DType

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"tensor shape must be non-empty with positive sizes, not {self.shape}")
        object.__setattr__(self, "shape", shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def channels(self) -> int:
        return self.shape[-1]

    def __str__(self) -> str:
        return f"{self.dtype}[{'x'.join(map(str, self.shape))}]"
