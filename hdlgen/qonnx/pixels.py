"""The model's input stage: elementwise float ops on the pixels, then the input quantizer.

An imported model reads ``pixel / 255`` (float32, NCHW), as torchvision's ``ToTensor`` gives it.
Up to the first quantizer every op is elementwise, so each channel is a function of one uint8
value: :class:`Pixels` holds that function as a table of the 256 float32 values, computed with
the same float32 operations the model applies. The quantizer turns the table into integer
codes ``u`` (0 .. 2**bits - 1), whose value in the model is ``alpha * u + beta``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HdlgenError

PIXEL_SCALE = np.float32(255)

ROUNDING = {"ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor, "DOWN": np.fix,
            "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)),
            "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
            "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5)}

FLOAT_OPS = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


@dataclass
class Pixels:
    table: np.ndarray     # (C, 256) float32: the value pixel p of channel c has become
    flat: bool = False    # the image was flattened (elementwise constants must then be scalars)

    @classmethod
    def start(cls, channels: int) -> "Pixels":
        t = np.arange(256, dtype=np.float32) / PIXEL_SCALE
        return cls(np.repeat(t[None, :], channels, axis=0))

    def apply(self, op: str, const, const_first: bool) -> "Pixels":
        """``table <op> const`` (or ``const <op> table``), in float32 like the model."""
        c = np.asarray(const, np.float32)[:, None]
        a, b = (c, self.table) if const_first else (self.table, c)
        with np.errstate(all="ignore"):
            return Pixels(FLOAT_OPS[op](a, b).astype(np.float32), self.flat)


@dataclass
class Codes:
    codes: np.ndarray  # (C, 256) int: the code of pixel p of channel c
    bits: int
    alpha: int
    beta: int
    scale: float


def bipolar(px: Pixels, scale: float) -> Codes:
    """BipolarQuant: +1 where the value is >= 0, else -1; code 1 or 0."""
    return Codes((px.table >= 0).astype(np.int64), 1, 2, -1, scale)


def quant(px: Pixels, scale, zeropt, bits, signed: bool, narrow: bool, rounding: str, where: str) -> Codes:
    """Quant: ``clip(round(x / scale + zeropt)) - zeropt``, as QONNX defines it (clip, then round)."""
    scale, zeropt, bits = (np.asarray(v, np.float32) for v in (scale, zeropt, bits))
    if scale.size != 1 or zeropt.size != 1 or bits.size != 1:
        raise HdlgenError(f"{where}: the input quantizer must have one scale, zero point and bit width for "
                          f"the whole tensor, not shapes {scale.shape}, {zeropt.shape}, {bits.shape}")
    scale, zeropt, nbits = scale.reshape(()), zeropt.reshape(()), float(bits.reshape(()))
    if not (scale > 0 and np.isfinite(scale)):
        raise HdlgenError(f"{where}: the input quantizer's scale must be positive, not {float(scale)}")
    if nbits != int(nbits) or not 1 <= nbits <= 8 or zeropt != np.round(zeropt):
        raise HdlgenError(f"{where}: the input quantizer must have 1 to 8 bits and an integer zero point "
                          f"(the hardware reads 8-bit inputs), not {nbits:g} bits and zero point {float(zeropt):g}")
    nbits = int(nbits)
    with np.errstate(all="ignore"):
        y = px.table / scale + zeropt
    if nbits == 1 and signed:  # QONNX reads a signed 1-bit Quant as bipolar
        return Codes((y >= 0).astype(np.int64), 1, 2, -1, float(scale))
    lo = -(2 ** (nbits - 1)) + (1 if narrow else 0) if signed else 0
    hi = 2 ** (nbits - 1) - 1 if signed else 2 ** nbits - 1 - (1 if narrow else 0)
    mode = rounding.upper()
    if mode not in ROUNDING:
        raise HdlgenError(f"{where}: rounding mode {rounding!r} is not one of {', '.join(ROUNDING)}")
    y = ROUNDING[mode](np.clip(y, np.float32(lo), np.float32(hi)))
    return Codes(y.astype(np.int64) - lo, nbits, 1, int(lo - zeropt), float(scale))
