"""Convolution that keeps clear of a oneDNN bug in strided 1x1 convolutions.

torch 2.13.0 ships oneDNN v3.12, whose ``jit_1x1:avx2`` backward-weights kernel corrupts the
heap (segmentation fault, bus error or "double free or corruption") for a 1x1 convolution
with stride 2 on a channels-last input with 2 to 7 input channels, fewer than one AVX2
vector of 8 floats. CPUs without AVX-512 (AMD EPYC Zen 3, for one) take that kernel by default;
``ONEDNN_MAX_CPU_ISA=AVX2`` makes any x86 CPU take it. Every input to hdlgen's convolutions
is channels-last (images arrive as (N, H, W, C) and are permuted), and ResNet shortcuts are
strided 1x1 convolutions, so pruning to few channels met it in training.

A strided 1x1 convolution equals subsampling followed by a stride-1 1x1 convolution; that is
how :func:`conv2d` computes it, so the faulty kernel is never chosen. Other kernels and
strides go to ``torch.nn.functional.conv2d`` unchanged. ``tests/test_onednn_guard.py`` trains
through this path with the ISA forced to AVX2 in a subprocess.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias=None, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """``F.conv2d`` (zero padding, groups 1), a strided 1x1 kernel computed without striding."""
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if weight.shape[-2:] != (1, 1) or (sh, sw) == (1, 1):
        return F.conv2d(x, weight, bias, (sh, sw), padding, dilation)
    ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    # A 1x1 kernel reads one pixel per output: dilation does not matter, stride picks the pixels.
    return F.conv2d(x[:, :, ::sh, ::sw].contiguous(), weight, bias, 1, 0, 1)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` computed through :func:`conv2d` (zero padding, groups 1 only)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("hdlgen Conv2d supports groups=1, numeric zero padding only")

    def _conv_forward(self, input, weight, bias):
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation)
