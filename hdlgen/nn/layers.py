"""Binarized building blocks whose inference the integer IR reproduces exactly.

A network is a :class:`BinaryNet`: a sequence that starts with :class:`InputQuant`, may
continue with :class:`BinaryConv2d` and :class:`MaxPool` layers on (N, H, W, C) images
(channels last, as the IR), then :class:`Flatten` and :class:`BinaryDense` layers, the last of
which is the output layer (``activation=False``).

Three ways to run it:

- training (``model.train()``): float32 throughout, BatchNorm on batch statistics, the sign
  activation and the weight binarization pass gradients straight through.
- integer (``model.eval()``, the default evaluation): exactly the arithmetic of the exported
  IR. Each activated layer computes its integer accumulator ``A`` (in float64, which holds
  every sum exactly) and outputs +1 where ``A >= T[c]`` (or ``-A >= T[c]`` for the channels
  whose BatchNorm scale is negative), with ``T`` from :func:`bn_sign_thresholds`. The output
  layer returns the integer scores ``A``.
- float reference (``model.eval()`` and ``model.float_reference = True``): the float32
  computation of training with BatchNorm's running statistics; the output layer returns the
  scaled scores. Its accuracy is reported next to the integer one.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch
from torch import nn

from ..errors import HdlgenError
from ..ir import BIPOLAR, DType, accumulator, uint
from .conv import conv2d

PIXEL = uint(8)
PIXEL_SCALE = 255


class _SignSTE(torch.autograd.Function):
    """sign with sign(0) = +1; the straight-through gradient passes where ``|x| <= 1``.

    ``sign(x) + 0.5`` is never 0, so its sign is the wanted +-1 in two in-place passes, and
    ``hardtanh_backward`` with bounds one float step beyond +-1 is the gradient mask without
    a saved boolean tensor: about 3x faster than ``where`` + mask, with identical values."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x).add_(0.5).sign_()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        bound = _just_above_one(x.dtype)
        return torch.ops.aten.hardtanh_backward(grad, x, -bound, bound)


@functools.lru_cache(maxsize=None)
def _just_above_one(dtype) -> float:
    """The smallest value of ``dtype`` above 1 (so that ``x < it`` means ``x <= 1``)."""
    return float(torch.nextafter(torch.tensor(1.0, dtype=dtype), torch.tensor(2.0, dtype=dtype)))


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """+1 where ``x >= 0`` else -1 (so sign(0) = +1); the gradient passes where ``|x| <= 1``."""
    return _SignSTE.apply(x)


def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """The same sign without autograd: +1 where ``x >= 0`` else -1."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def bn_sign_thresholds(gamma, beta, mean, var, eps: float, input_scale: float, acc: DType):
    """Fold ``sign(BatchNorm(A / input_scale))`` into integer thresholds on ``A``.

    Returns ``(thresholds, negate)``: int64 and bool arrays of one entry per channel. Channel
    ``c`` outputs +1 exactly where ``(-A if negate[c] else A) >= thresholds[c]``. Everything is
    computed in float64:

    - gamma > 0: ``A >= ceil(s * (mean - beta * sqrt(var + eps) / gamma))``
    - gamma < 0: the inequality flips, ``-A >= ceil(-s * (mean - beta * sqrt(var + eps) / gamma))``
    - gamma = 0: the output is the constant sign of beta (+1 for beta >= 0)

    Thresholds are clamped into ``acc.min .. acc.max + 1`` (``acc.min`` always passes,
    ``acc.max + 1`` never does), which changes no decision for an ``A`` of type ``acc``.
    """
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (gamma, beta, mean, var))
    for label, v in (("weight (gamma)", gamma), ("bias (beta)", beta), ("running_mean", mean),
                     ("running_var", var)):
        if not np.all(np.isfinite(v)):
            raise HdlgenError(f"BatchNorm {label} holds non-finite values; the layer cannot be exported")
    if np.any(var + eps <= 0):
        raise HdlgenError("BatchNorm running_var + eps must be positive")
    lo, hi = acc.min, acc.max + 1
    sigma = np.sqrt(var + np.float64(eps))
    safe = np.where(gamma == 0, 1.0, gamma)
    with np.errstate(over="ignore", invalid="ignore"):
        tau = np.float64(input_scale) * (mean - beta * sigma / safe)
    negate = gamma < 0
    bound = np.where(negate, -tau, tau)
    bound = np.where(np.isnan(bound), 0.0, bound)
    bound = np.ceil(np.clip(bound, lo, hi))
    constant = np.where(beta >= 0, lo, hi)
    thresholds = np.where(gamma == 0, constant, bound).astype(np.int64)
    return thresholds, negate


def _bn_thresholds(bn, channels: int, input_scale, acc: DType):
    gamma = bn.weight.detach().cpu() if bn.weight is not None else torch.ones(channels)
    beta = bn.bias.detach().cpu() if bn.bias is not None else torch.zeros(channels)
    if bn.running_mean is None or bn.running_var is None:
        raise HdlgenError(f"{type(bn).__name__} needs running statistics (track_running_stats=True)")
    return bn_sign_thresholds(gamma.double().numpy(), beta.double().numpy(),
                              bn.running_mean.detach().cpu().double().numpy(),
                              bn.running_var.detach().cpu().double().numpy(),
                              bn.eps, input_scale, acc)


def _apply_thresholds(acc, thresholds, negate, channel_dim: int = -1):
    """+1 where ``(-acc if negate else acc) >= thresholds`` per channel, else -1 (float64)."""
    shape = [1] * acc.dim()
    shape[channel_dim] = -1
    t = torch.from_numpy(thresholds.astype(np.float64)).to(acc.device).reshape(shape)
    sgn = torch.from_numpy(np.where(negate, -1.0, 1.0)).to(acc.device).reshape(shape)
    return torch.where(acc * sgn >= t, 1.0, -1.0).to(torch.float64)


class InputQuant(nn.Module):
    """Declares the network input: uint8 images of shape (H, W, C), channels last.

    Takes a batch (N, H, W, C) of pixel values 0..255 (uint8 or float). The float paths see
    ``x / 255``; the integer path keeps the integers.
    """

    def __init__(self, shape):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or any(s < 1 for s in shape):
            raise HdlgenError(f"InputQuant shape must be (H, W, C) with positive sizes, not {shape}")
        self.shape = shape
        self.float_reference = False

    def forward(self, x):
        if tuple(x.shape[1:]) != self.shape:
            raise HdlgenError(f"input batch must have shape (N, {', '.join(map(str, self.shape))}), "
                              f"got {tuple(x.shape)}")
        if self.training or self.float_reference:
            return x.to(torch.float32) / PIXEL_SCALE
        x = x.to(torch.float64)
        if x.numel() and (x.min() < 0 or x.max() > 255 or not torch.equal(x, torch.round(x))):
            raise HdlgenError("input pixels must be integers in 0 .. 255")
        return x

    def extra_repr(self):
        return f"shape={self.shape}, dtype=uint8, scale=1/{PIXEL_SCALE}"


class Flatten(nn.Module):
    """(N, H, W, C) -> (N, H*W*C) in row-major order, channel fastest (as the IR's flatten)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class BinaryLinear(nn.Module):
    """Linear layer without bias whose float latent weights are binarized to +-1."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def binary_weight(self) -> torch.Tensor:
        """The +-1 weights (with the straight-through gradient to the latent weights)."""
        return sign_ste(self.weight)

    def forward(self, x):
        return x @ self.binary_weight().to(x.dtype).t()

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class BinaryDense(nn.Module):
    """BinaryLinear -> BatchNorm1d -> sign; or, with ``activation=False``, the output layer:
    BinaryLinear alone, whose integer sums are the class scores.

    The output layer multiplies its scores by a learnable positive scale for the loss (it does
    not change the argmax and is not exported); the integer path returns the plain sums.
    """

    def __init__(self, in_features: int, out_features: int, activation: bool = True):
        super().__init__()
        for label, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise HdlgenError(f"BinaryDense {label} must be a positive integer, not {v!r}")
        self.in_features, self.out_features = in_features, out_features
        self.activation = bool(activation)
        self.linear = BinaryLinear(in_features, out_features)
        if self.activation:
            self.bn = nn.BatchNorm1d(out_features)
        else:
            self.log_scale = nn.Parameter(torch.tensor(-0.5 * math.log(in_features)))
        self.float_reference = False
        # Set by BinaryNet from the layer's place in the network.
        self.input_dtype: DType = BIPOLAR
        self.input_scale: int = 1

    @property
    def accumulator_dtype(self) -> DType:
        return accumulator(self.in_features, self.input_dtype, BIPOLAR)

    def integer_weight(self) -> np.ndarray:
        """The binarized weights as an int8 (out, in) array of -1 and +1."""
        w = self.linear.weight.detach().cpu()
        return np.where(w.numpy() >= 0, 1, -1).astype(np.int8)

    def integer_thresholds(self):
        """``(thresholds, negate)`` of this layer, from :func:`bn_sign_thresholds`."""
        if not self.activation:
            raise HdlgenError("the output layer (activation=False) has no thresholds")
        return _bn_thresholds(self.bn, self.out_features, self.input_scale, self.accumulator_dtype)

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def forward(self, x):
        if self.training or self.float_reference:
            z = self.linear(x.to(torch.float32))
            if not self.activation:
                return z * self.scale()
            return sign_ste(self.bn(z))
        return self._integer_forward(x)

    def _integer_forward(self, x):
        x = x.to(torch.float64)
        w = torch.from_numpy(self.integer_weight()).to(device=x.device, dtype=torch.float64)
        acc = x @ w.t()  # exact: every partial sum is an integer far below 2**53
        if not self.activation:
            return acc
        thresholds, negate = self.integer_thresholds()
        return _apply_thresholds(acc, thresholds, negate)

    def extra_repr(self):
        return f"activation={self.activation}"


def _positive_int(owner, label, v, lo=1):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise HdlgenError(f"{owner} {label} must be an integer >= {lo}, not {v!r}")
    return v


class BinaryConv2d(nn.Module):
    """Binarized convolution -> BatchNorm2d -> sign, on channels-last images (N, H, W, C).

    The weights (latent float, shape (out, in, K, K) as PyTorch's) are binarized to +-1 with a
    straight-through gradient; there is no bias. Positions outside the image take
    ``pad_value``: for a layer reading binary activations it must be +1 or -1 (a binary
    activation is never 0); for the first layer, which reads uint8 pixels, it is 0 (a black
    pixel), and ``pad_value`` is ignored. Integer path: the accumulator ``A`` of every output
    pixel and channel goes through the same thresholds as :class:`BinaryDense`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, pad_value: int = -1):
        super().__init__()
        name = "BinaryConv2d"
        self.in_channels = _positive_int(name, "in_channels", in_channels)
        self.out_channels = _positive_int(name, "out_channels", out_channels)
        self.kernel_size = _positive_int(name, "kernel_size", kernel_size)
        self.stride = _positive_int(name, "stride", stride)
        self.padding = _positive_int(name, "padding", padding, 0)
        if self.padding >= self.kernel_size:
            raise HdlgenError(f"BinaryConv2d padding {padding} must be smaller than kernel_size {kernel_size}")
        if pad_value not in (-1, 1) or isinstance(pad_value, bool):
            raise HdlgenError(f"BinaryConv2d pad_value must be +1 or -1 (binary activations are never 0), "
                              f"not {pad_value!r}")
        self.pad_value = int(pad_value)
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, k, k))
        nn.init.uniform_(self.weight, -1.0, 1.0)
        self.bn = nn.BatchNorm2d(out_channels)
        self.float_reference = False
        # Set by BinaryNet from the layer's place in the network.
        self.input_dtype: DType = BIPOLAR
        self.input_scale: int = 1

    @property
    def fan_in(self) -> int:
        return self.kernel_size * self.kernel_size * self.in_channels

    @property
    def accumulator_dtype(self) -> DType:
        return accumulator(self.fan_in, self.input_dtype, BIPOLAR)

    @property
    def effective_pad_value(self) -> int:
        """The value padded positions take in the integer path and in the IR."""
        return 0 if self.input_dtype.kind == "uint" else self.pad_value

    def integer_weight(self) -> np.ndarray:
        """The binarized weights as an int8 (out, K, K, in) array of -1 and +1 (the IR's layout)."""
        w = self.weight.detach().cpu().numpy()
        return np.where(w >= 0, 1, -1).astype(np.int8).transpose(0, 2, 3, 1).copy()

    def integer_thresholds(self):
        """``(thresholds, negate)`` of this layer, from :func:`bn_sign_thresholds`."""
        return _bn_thresholds(self.bn, self.out_channels, self.input_scale, self.accumulator_dtype)

    def output_size(self, h: int, w: int) -> tuple:
        k, s, p = self.kernel_size, self.stride, self.padding
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1

    def _conv(self, x, weight):
        x = x.permute(0, 3, 1, 2)
        if self.padding:
            p = self.padding
            x = torch.nn.functional.pad(x, (p, p, p, p), value=float(self.effective_pad_value))
        return conv2d(x, weight, stride=self.stride)

    def _check(self, x):
        if x.dim() != 4 or x.shape[3] != self.in_channels:
            raise HdlgenError(f"BinaryConv2d expects (N, H, W, {self.in_channels}) inputs, got {tuple(x.shape)}")

    def forward(self, x):
        self._check(x)
        if self.training or self.float_reference:
            z = self._conv(x.to(torch.float32), sign_ste(self.weight))
            return sign_ste(self.bn(z)).permute(0, 2, 3, 1)
        x = x.to(torch.float64)
        w = torch.from_numpy(self.integer_weight().transpose(0, 3, 1, 2).copy()).to(x.device, torch.float64)
        acc = self._conv(x, w)  # exact: integer sums far below 2**53
        thresholds, negate = self.integer_thresholds()
        return _apply_thresholds(acc, thresholds, negate, channel_dim=1).permute(0, 2, 3, 1)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, pad_value={self.pad_value}")


class MaxPool(nn.Module):
    """Max pooling of channels-last +-1 activations (N, H, W, C), no padding: +1 where any
    value of the window is +1 (the IR's maxpool)."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size = _positive_int("MaxPool", "kernel_size", kernel_size)
        self.stride = _positive_int("MaxPool", "stride", kernel_size if stride is None else stride)

    def forward(self, x):
        if x.dim() != 4:
            raise HdlgenError(f"MaxPool expects (N, H, W, C) inputs, got {tuple(x.shape)}")
        y = torch.nn.functional.max_pool2d(x.permute(0, 3, 1, 2), self.kernel_size, self.stride)
        return y.permute(0, 2, 3, 1)

    def output_size(self, h: int, w: int) -> tuple:
        k, s = self.kernel_size, self.stride
        return (h - k) // s + 1, (w - k) // s + 1

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


SUPPORTED = (InputQuant, Flatten, BinaryDense, BinaryConv2d, MaxPool)


class BinaryNet(nn.Module):
    """A chain of binarized layers: InputQuant, then BinaryConv2d and MaxPool layers, then
    Flatten and BinaryDense layers.

    ``forward`` returns the class scores: integers (float64 holding exact integers) in the
    integer path, scaled float32 scores in training and in the float reference path.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self._configure()
        self.float_reference = False

    def _configure(self):
        layers = list(self.layers)
        if not layers or not isinstance(layers[0], InputQuant):
            raise HdlgenError("a BinaryNet must start with InputQuant (the uint8 input)")
        dtype, scale = PIXEL, PIXEL_SCALE
        dense = [m for m in layers if isinstance(m, BinaryDense)]
        if not dense or dense[-1].activation or layers[-1] is not dense[-1]:
            raise HdlgenError("a BinaryNet must end with BinaryDense(..., activation=False), the output layer")
        shape = layers[0].shape
        for i, m in enumerate(layers):
            if isinstance(m, InputQuant) and i:
                raise HdlgenError(f"layers.{i}: InputQuant may only be the first layer")
            if isinstance(m, (BinaryConv2d, MaxPool)):
                if shape is None:
                    raise HdlgenError(f"layers.{i} ({type(m).__name__}) needs an image input; it follows a Flatten")
                if isinstance(m, MaxPool) and i and dtype != BIPOLAR:
                    raise HdlgenError(f"layers.{i} (MaxPool) must follow a binarized layer, not the uint8 input")
                if isinstance(m, BinaryConv2d):
                    if m.in_channels != shape[2]:
                        raise HdlgenError(f"layers.{i} (BinaryConv2d) has in_channels={m.in_channels} but its "
                                          f"input has {shape[2]} channels")
                    m.input_dtype, m.input_scale = dtype, scale
                    dtype, scale = BIPOLAR, 1
                oh, ow = m.output_size(shape[0], shape[1])
                if oh < 1 or ow < 1:
                    raise HdlgenError(f"layers.{i} ({type(m).__name__}) does not fit its {shape[0]}x{shape[1]} input")
                shape = (oh, ow, m.out_channels if isinstance(m, BinaryConv2d) else shape[2])
            if isinstance(m, Flatten):
                shape = None
            if isinstance(m, BinaryDense):
                if not m.activation and m is not layers[-1]:
                    raise HdlgenError(f"layers.{i}: only the last BinaryDense may have activation=False")
                m.input_dtype, m.input_scale = dtype, scale
                dtype, scale = BIPOLAR, 1

    @property
    def float_reference(self) -> bool:
        return self._float_reference

    @float_reference.setter
    def float_reference(self, value: bool):
        self._float_reference = bool(value)
        for m in self.modules():
            if m is not self and hasattr(m, "float_reference"):
                m.float_reference = bool(value)

    @contextlib.contextmanager
    def float_mode(self, enabled: bool = True):
        """Temporarily switch the evaluation path to the float reference (or to integers)."""
        before = self.float_reference
        self.float_reference = enabled
        try:
            yield self
        finally:
            self.float_reference = before

    def forward(self, x):
        return self.layers(x)

    def activations(self, x) -> list:
        """The output of every BinaryDense: +-1 tensors of the activated layers, then the scores."""
        out = []
        for m in self.layers:
            x = m(x)
            if isinstance(m, BinaryDense):
                out.append(x)
        return out

    def hidden_outputs(self, x) -> list:
        """``(module, output)`` of every BinaryConv2d, MaxPool and BinaryDense, in order."""
        out = []
        for m in self.layers:
            x = m(x)
            if isinstance(m, (BinaryConv2d, MaxPool, BinaryDense)):
                out.append((m, x))
        return out

    def dense_layers(self) -> list:
        return [m for m in self.layers if isinstance(m, BinaryDense)]

    def conv_layers(self) -> list:
        return [m for m in self.layers if isinstance(m, BinaryConv2d)]

    @torch.no_grad()
    def clip_weights(self, bound: float = 1.0):
        """Keep the latent weights in [-bound, bound] (call after each optimizer step)."""
        for m in self.dense_layers():
            m.linear.weight.clamp_(-bound, bound)
        for m in self.conv_layers():
            m.weight.clamp_(-bound, bound)

    @property
    def input_shape(self) -> tuple:
        return self.layers[0].shape
