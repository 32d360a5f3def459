"""The IR's operations: what each one means, which attributes and parameters it takes, and
the type of its result.

Each op is a function ``infer(node, input_types) -> TensorType`` registered in ``OPS``; it
checks the node and raises ``ValueError`` naming the node and the bad value. The arithmetic of
each op is defined by the golden executor (:mod:`hdlgen.golden`), which follows the rules
written in the docstrings here.
"""

from __future__ import annotations

import numpy as np

from .types import BIPOLAR, DType, TensorType

OPS = {}


def op(name):
    def register(fn):
        OPS[name] = fn
        return fn
    return register


def _need(cond, node, message):
    if not cond:
        raise ValueError(f"node {node.name!r} ({node.op}): {message}")


def _one_input(node, inputs):
    _need(len(inputs) == 1, node, f"takes 1 input, got {len(inputs)}")
    return inputs[0]


def _param(node, key, ndim):
    _need(key in node.params, node, f"missing parameter {key!r}")
    value = node.params[key]
    _need(value.ndim == ndim, node, f"parameter {key!r} must have {ndim} axes, has shape {value.shape}")
    return value


def weight_dtype(node) -> DType:
    return DType.parse(node.attrs.get("weight_dtype", "bipolar"))


def product_range(a: DType, b: DType):
    corners = [a.min * b.min, a.min * b.max, a.max * b.min, a.max * b.max]
    return min(corners), max(corners)


def accumulator(fan_in: int, x: DType, w: DType) -> DType:
    """Type of a sum of ``fan_in`` products of an ``x`` and a ``w`` value.

    Derived from the fan-in and the operand types alone, never from the weight values, so new
    weights can be packed into the same hardware.
    """
    lo, hi = product_range(x, w)
    return DType.for_range(fan_in * lo, fan_in * hi)


@op("flatten")
def _flatten(node, inputs):
    """(H, W, C) -> (H*W*C,), row-major: channel fastest, then column, then row."""
    x = _one_input(node, inputs)
    return TensorType((x.size,), x.dtype)


@op("dense")
def _dense(node, inputs):
    """acc[m] = sum_n weight[m, n] * x[n]; weight has shape (M, N) and type ``weight_dtype``.

    The result is the exact integer sum, typed by :func:`accumulator`.
    """
    x = _one_input(node, inputs)
    _need(len(x.shape) == 1, node, f"input must be a vector, got shape {x.shape}")
    w = _param(node, "weight", 2)
    wt = weight_dtype(node)
    _need(w.shape[1] == x.shape[0], node, f"weight has {w.shape[1]} columns, input has {x.shape[0]} values")
    _need(wt.holds(w), node, f"weights must all be {wt} values")
    return TensorType((w.shape[0],), accumulator(x.shape[0], x.dtype, wt))


@op("threshold")
def _threshold(node, inputs):
    """out = number of l with x[..., c] >= thresholds[c, l] (thresholds ascending per channel).

    With ``out = "bipolar"`` (one threshold per channel) the result is +1 where x >= T[c],
    else -1. With ``out = "uint"`` it is the count itself. Thresholds lie in
    ``acc.min .. acc.max + 1``: ``acc.min`` always passes, ``acc.max + 1`` never does.
    """
    x = _one_input(node, inputs)
    t = _param(node, "thresholds", 2)
    _need(x.dtype.kind != "bipolar", node, "input must be an integer accumulator")
    _need(t.shape[0] == x.channels, node, f"{t.shape[0]} threshold rows for {x.channels} channels")
    _need(t.shape[1] >= 1, node, "needs at least one threshold per channel")
    _need(bool(np.all(np.diff(t, axis=1) >= 0)), node, "thresholds must ascend along each row")
    _threshold_range(node, t, x)
    out = node.attrs.get("out", "bipolar")
    if out == "bipolar":
        _need(t.shape[1] == 1, node, "a bipolar output takes one threshold per channel")
        return TensorType(x.shape, BIPOLAR)
    _need(out == "uint", node, f"out must be 'bipolar' or 'uint', not {out!r}")
    return TensorType(x.shape, DType("uint", max(1, t.shape[1].bit_length())))


def _threshold_range(node, t, x):
    _need(t.min() >= x.dtype.min and t.max() <= x.dtype.max + 1, node,
          f"thresholds must lie in {x.dtype.min} .. {x.dtype.max + 1}, found {t.min()} .. {t.max()}")


@op("select_threshold")
def _select_threshold(node, inputs):
    """out = +1 where x[..., c] >= thresholds[c, 1 if sel[..., c] == +1 else 0], else -1.

    Two inputs: ``x``, an integer accumulator, and ``sel``, a bipolar tensor of the same shape
    (a residual network's shortcut). ``thresholds`` (C, 2): column 0 applies where ``sel`` is -1,
    column 1 where it is +1; each lies in ``acc.min .. acc.max + 1`` like ``threshold``'s. This
    is the integer form of a binarized residual add ``sign(bn(x) + sel)``.
    """
    _need(len(inputs) == 2, node, f"takes 2 inputs (accumulator, select), got {len(inputs)}")
    x, sel = inputs
    _need(x.dtype.kind != "bipolar", node, "first input must be an integer accumulator")
    _need(sel.dtype.kind == "bipolar", node, f"second input (select) must be bipolar, not {sel.dtype}")
    _need(sel.shape == x.shape, node, f"select has shape {sel.shape}, the accumulator {x.shape}")
    t = _param(node, "thresholds", 2)
    _need(t.shape == (x.channels, 2), node, f"thresholds must have shape ({x.channels}, 2), not {t.shape}")
    _threshold_range(node, t, x)
    return TensorType(x.shape, BIPOLAR)


@op("globalsum")
def _globalsum(node, inputs):
    """out[c] = sum over y, x of in[y, x, c]: global pooling without the division (which
    changes no argmax that follows). For bipolar input the +-1 values are summed."""
    x = _one_input(node, inputs)
    h, w_, c = _image(node, x)
    return TensorType((c,), DType.for_range(h * w_ * x.dtype.min, h * w_ * x.dtype.max))


@op("argmax")
def _argmax(node, inputs):
    """Index of the largest value of a vector; on a tie, the lowest index."""
    x = _one_input(node, inputs)
    _need(len(x.shape) == 1, node, f"input must be a vector, got shape {x.shape}")
    return TensorType((1,), DType("uint", max(1, (x.shape[0] - 1).bit_length())))


def _int_attr(node, key, lo, default=None):
    value = node.attrs.get(key, default)
    _need(value is not None, node, f"missing attribute {key!r}")
    _need(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lo, node,
          f"attribute {key!r} must be an integer >= {lo}, not {value!r}")
    return int(value)


def _image(node, x):
    _need(len(x.shape) == 3, node, f"input must be an image (H, W, C), got shape {x.shape}")
    return x.shape


def window_out(size: int, k: int, stride: int, pad: int = 0) -> int:
    """Number of window positions along one axis: (size + 2*pad - k) // stride + 1."""
    return (size + 2 * pad - k) // stride + 1


def pad_value(node, in_dtype: DType):
    """The value of a conv2d node's padded positions: its ``pad_value``, else the input type's minimum."""
    return node.attrs.get("pad_value", in_dtype.min)


@op("conv2d")
def _conv2d(node, inputs):
    """acc[y, x, m] = sum over ky, kx, c of weight[m, ky, kx, c] * in[S*y + ky - P, S*x + kx - P, c].

    Input (H, W, C) of uint or bipolar values; ``weight`` (M, K, K, C) of type ``weight_dtype``;
    attributes ``kernel`` K, ``stride`` S (default 1), ``pad`` P (default 0, below K) and
    ``pad_value``, the value every position outside the image takes (a value of the input
    type; default its minimum: 0 for uint, -1 for bipolar). The output (H', W', M) has
    H' = (H + 2P - K)//S + 1 (likewise W') and holds the exact sums, typed by
    :func:`accumulator` with fan-in K*K*C.
    """
    x = _one_input(node, inputs)
    h, w_, c = _image(node, x)
    _need(x.dtype.kind in ("uint", "bipolar"), node, f"input must be uint or bipolar, not {x.dtype}")
    k = _int_attr(node, "kernel", 1)
    s = _int_attr(node, "stride", 1, 1)
    p = _int_attr(node, "pad", 0, 0)
    _need(p < k, node, f"pad {p} must be smaller than the kernel {k}")
    pv = pad_value(node, x.dtype)
    _need(isinstance(pv, (int, np.integer)) and not isinstance(pv, bool) and x.dtype.holds(np.array([pv])),
          node, f"pad_value {pv!r} is not a {x.dtype} value")
    wgt = _param(node, "weight", 4)
    wt = weight_dtype(node)
    _need(wgt.shape[1:3] == (k, k), node, f"weight has a {wgt.shape[1]}x{wgt.shape[2]} kernel, attribute kernel is {k}")
    _need(wgt.shape[3] == c, node, f"weight has {wgt.shape[3]} input channels, input has {c}")
    _need(wt.holds(wgt), node, f"weights must all be {wt} values")
    oh, ow = window_out(h, k, s, p), window_out(w_, k, s, p)
    _need(oh >= 1 and ow >= 1, node, f"kernel {k} with pad {p} does not fit the {h}x{w_} input")
    return TensorType((oh, ow, wgt.shape[0]), accumulator(k * k * c, x.dtype, wt))


@op("maxpool")
def _maxpool(node, inputs):
    """out[y, x, c] = max over ky, kx < K of in[S*y + ky, S*x + kx, c]; no padding.

    Attributes ``kernel`` K and ``stride`` S (default K). The output (H', W', C) has
    H' = (H - K)//S + 1 (likewise W') and the input's type; for bipolar values the max is +1
    when any value of the window is +1.
    """
    x = _one_input(node, inputs)
    h, w_, c = _image(node, x)
    k = _int_attr(node, "kernel", 1)
    s = _int_attr(node, "stride", 1, k)
    _need(k <= h and k <= w_, node, f"kernel {k} does not fit the {h}x{w_} input")
    return TensorType((window_out(h, k, s), window_out(w_, k, s), c), x.dtype)
