"""Golden model: runs an IR graph on a batch with NumPy int64 arithmetic.

Each op's implementation follows the rule stated in :mod:`hdlgen.ir.ops`. Every produced
tensor is checked against its declared type, so a width the IR got wrong fails here, loudly,
before any hardware is built from it.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph
from ..ir.ops import pad_value

KERNELS = {}
TYPED = {"conv2d"}  # kernels that also take their input's DType


def kernel(name):
    def register(fn):
        KERNELS[name] = fn
        return fn
    return register


def _matmul(x, w):
    """Exact integer ``x @ w`` (int64 result). Through float64 (BLAS, many times faster) when
    no partial sum can reach 2**53, where float64 holds every integer exactly; else int64."""
    bound = x.shape[-1] * max(1, int(np.abs(x).max(initial=0))) * max(1, int(np.abs(w).max(initial=0)))
    if bound < 2 ** 53:
        return np.rint(x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x @ w


@kernel("flatten")
def _flatten(node, x):
    return x.reshape(x.shape[0], -1)


@kernel("dense")
def _dense(node, x):
    # exact: |acc| < 2**62 for every width the IR allows (see _matmul)
    return _matmul(x, node.params["weight"].astype(np.int64).T)


@kernel("threshold")
def _threshold(node, x):
    t = node.params["thresholds"].astype(np.int64)  # (C, L)
    count = (x[..., None] >= t).sum(axis=-1)
    return 2 * count - 1 if node.attrs.get("out", "bipolar") == "bipolar" else count


@kernel("select_threshold")
def _select_threshold(node, x, sel):
    t = node.params["thresholds"].astype(np.int64)  # (C, 2)
    chosen = np.where(sel > 0, t[:, 1], t[:, 0])
    return np.where(x >= chosen, 1, -1)


@kernel("globalsum")
def _globalsum(node, x):
    return x.sum(axis=(1, 2))


def _windows(x, k, stride):
    """(B, H, W, C) -> (B, H', W', K, K, C): every K x K window at the given stride."""
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return v.transpose(0, 1, 2, 4, 5, 3)


@kernel("conv2d")
def _conv2d(node, x, in_dtype):
    k, s, p = node.attrs["kernel"], node.attrs.get("stride", 1), node.attrs.get("pad", 0)
    w = node.params["weight"].astype(np.int64)
    if p:
        pv = pad_value(node, in_dtype)
        xp = np.full((x.shape[0], x.shape[1] + 2 * p, x.shape[2] + 2 * p, x.shape[3]), pv, np.int64)
        xp[:, p:p + x.shape[1], p:p + x.shape[2]] = x
        x = xp
    win = _windows(x, k, s)
    b, oh, ow = win.shape[:3]
    return _matmul(win.reshape(b * oh * ow, -1), w.reshape(w.shape[0], -1).T).reshape(b, oh, ow, w.shape[0])


@kernel("maxpool")
def _maxpool(node, x):
    k = node.attrs["kernel"]
    return _windows(x, k, node.attrs.get("stride", k)).max(axis=(3, 4))


@kernel("argmax")
def _argmax(node, x):
    return np.argmax(x, axis=-1)[:, None]  # np.argmax returns the first maximum


def run(graph: Graph, x, keep_all: bool = True) -> dict:
    """Run ``graph`` on ``x`` (a batch: shape ``(B, *input_shape)``).

    Returns a dict from tensor name to int64 array (batch first): every tensor when
    ``keep_all``, else the input and the output only.
    """
    x = np.asarray(x)
    want = (x.shape[0],) + graph.input_type.shape if x.ndim == len(graph.input_type.shape) + 1 else None
    if want is None or x.shape != want:
        raise ValueError(f"input batch must have shape (B, {', '.join(map(str, graph.input_type.shape))}), "
                         f"got {x.shape}")
    x = x.astype(np.int64)
    if not graph.input_type.dtype.holds(x):
        raise ValueError(f"input values must be {graph.input_type.dtype}, found {x.min()} .. {x.max()}")
    values = {graph.input_name: x}
    types = graph.types()
    for node in graph.nodes:
        extra = (types[node.inputs[0]].dtype,) if node.op in TYPED else ()
        out = KERNELS[node.op](node, *(values[i] for i in node.inputs), *extra)
        if out.shape[1:] != node.type.shape or not node.type.dtype.holds(out):
            raise AssertionError(f"golden: node {node.name!r} produced {out.shape[1:]} values "
                                 f"{out.min()} .. {out.max()}, declared {node.type}")
        values[node.name] = out
    if not keep_all:
        values = {graph.input_name: x, graph.output: values[graph.output]}
    return values


def classify(graph: Graph, x, batch: int = 256) -> np.ndarray:
    """Class index per image: the graph's output, which must be an argmax."""
    labels = []
    for i in range(0, len(x), batch):
        labels.append(run(graph, x[i:i + batch], keep_all=False)[graph.output][:, 0])
    return np.concatenate(labels) if labels else np.zeros(0, np.int64)
