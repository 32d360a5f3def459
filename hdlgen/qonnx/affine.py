"""The float arithmetic between a layer's integer accumulator and what reads it, per channel.

An accumulator ``A`` (exact in the IR) reaches the next quantizer or the model's output through
float ops that are all affine per channel: the scales of the layer's input and weights, a bias,
BatchNormalization, the scale/offset tail. :class:`Affine` keeps their composition as
``z = k * (A - tau)`` (``z = const`` where ``k`` is 0), in float64 from the model's float32
parameters. Keeping the root ``tau`` itself (rather than a slope and an offset) makes the common
exact cases exact: a BatchNorm with running mean ``mu`` and bias 0 gives ``tau = mu`` (scaled
by a power of two) with no rounding at all.
"""

from __future__ import annotations

import numpy as np

from ..errors import HdlgenError
from ..ir import DType


class Affine:
    def __init__(self, k, tau):
        self.k = np.asarray(k, np.float64).copy()
        self.tau = np.asarray(tau, np.float64).copy()
        self.const = np.zeros_like(self.k)

    @property
    def channels(self) -> int:
        return self.k.shape[0]

    def _check(self, where: str):
        if not (np.all(np.isfinite(self.k)) and np.all(np.isfinite(self.tau)) and np.all(np.isfinite(self.const))):
            raise HdlgenError(f"{where}: the layer's float scale or offset becomes infinite or NaN")

    def mul(self, c, where: str):
        """z * c"""
        c = np.broadcast_to(np.asarray(c, np.float64), self.k.shape)
        self.k, self.const = self.k * c, self.const * c
        self._check(where)

    def div(self, c, where: str):
        """z / c"""
        c = np.broadcast_to(np.asarray(c, np.float64), self.k.shape)
        if np.any(c == 0):
            raise HdlgenError(f"{where}: division by zero")
        self.k, self.const = self.k / c, self.const / c
        self._check(where)

    def add(self, c, where: str):
        """z + c"""
        c = np.broadcast_to(np.asarray(c, np.float64), self.k.shape)
        live = self.k != 0
        self.tau = np.where(live, self.tau - c / np.where(live, self.k, 1), self.tau)
        self.const = np.where(live, self.const, self.const + c)
        self._check(where)

    def batchnorm(self, gamma, beta, mean, var, eps: float, where: str):
        """gamma * (z - mean) / sqrt(var + eps) + beta"""
        gamma, beta, mean, var = (np.asarray(v, np.float64).reshape(-1) for v in (gamma, beta, mean, var))
        if np.any(var + np.float64(eps) <= 0):
            raise HdlgenError(f"{where}: running variance + epsilon must be positive")
        sigma = np.sqrt(var + np.float64(eps))
        live, on = self.k != 0, gamma != 0
        safe_k, safe_g = np.where(live, self.k, 1), np.where(on, gamma, 1)
        tau = self.tau + (mean - beta * sigma / safe_g) / safe_k
        const = np.where(live, beta, gamma * (self.const - mean) / sigma + beta)
        self.tau = np.where(live & on, tau, self.tau)
        self.const = np.where(live & on, self.const, const)
        self.k = np.where(on, gamma * self.k / sigma, 0.0)
        self._check(where)

    def sign_thresholds(self, acc: DType):
        """``(thresholds, negate)`` per channel for a quantizer that outputs +1 where z >= 0:
        channel c gives +1 exactly where ``(-A if negate[c] else A) >= thresholds[c]``, with the
        thresholds clamped into ``acc.min .. acc.max + 1`` (which changes no decision)."""
        lo, hi = acc.min, acc.max + 1
        negate = self.k < 0
        bound = np.ceil(np.clip(np.where(negate, -self.tau, self.tau), lo, hi))
        t = np.where(self.k == 0, np.where(self.const >= 0, lo, hi), bound)
        return t.astype(np.int64), negate

    def argmax_sign(self, where: str) -> int:
        """+1 if argmax over channels of z is argmax of A, -1 if it is argmax of -A; raises when
        the channels have different scales or offsets (their argmax is not an integer one)."""
        if np.all(self.k == self.k[0]) and np.all(self.tau == self.tau[0]) and self.k[0] != 0:
            return 1 if self.k[0] > 0 else -1
        raise HdlgenError(f"{where}: the output scores have a different float scale or offset per class "
                          f"(scales {np.unique(self.k)[:4].tolist()}, zero crossings {np.unique(self.tau)[:4].tolist()}); "
                          "hdlgen's argmax reads the integer scores, so every class needs the same scale and "
                          "offset (a per-tensor TensorNorm or Mul/Add is fine, a per-class bias or BatchNorm "
                          "is not)")
