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
    _need(t.min() >= x.dtype.min and t.max() <= x.dtype.max + 1, node,
          f"thresholds must lie in {x.dtype.min} .. {x.dtype.max + 1}, found {t.min()} .. {t.max()}")
    out = node.attrs.get("out", "bipolar")
    if out == "bipolar":
        _need(t.shape[1] == 1, node, "a bipolar output takes one threshold per channel")
        return TensorType(x.shape, BIPOLAR)
    _need(out == "uint", node, f"out must be 'bipolar' or 'uint', not {out!r}")
    return TensorType(x.shape, DType("uint", max(1, t.shape[1].bit_length())))


@op("argmax")
def _argmax(node, inputs):
    """Index of the largest value of a vector; on a tie, the lowest index."""
    x = _one_input(node, inputs)
    _need(len(x.shape) == 1, node, f"input must be a vector, got shape {x.shape}")
    return TensorType((1,), DType("uint", max(1, (x.shape[0] - 1).bit_length())))
