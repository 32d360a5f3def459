"""From IR nodes to hardware engines.

The IR says *what* is computed; a plan groups nodes into the engines that compute it:

- ``MVAU`` (matrix-vector-activation unit): a ``dense`` node, fused with the ``threshold``
  node that follows it when there is one.
- ``ArgMax``: the label select at the end.
- a ``conv2d`` node becomes two engines: a ``SWU`` (sliding-window unit, named
  ``<conv>_swu``) that streams the K x K window of every output pixel, and an ``MVAU`` with
  ``pixels`` = H'*W' that takes each window as one vector of K*K*C values, in (ky, kx, c)
  order, fused with the ``threshold`` node that must follow it.
- ``MaxPool``: a ``maxpool`` node (its own sliding window and an element-wise max).

``flatten`` costs nothing in hardware: the stream already carries pixels in the flattened
(row-major, channel-fastest) order.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HdlgenError
from ..ir import DType, Graph
from ..ir.ops import pad_value, weight_dtype


@dataclass(frozen=True)
class MVAU:
    name: str            # the dense node's name
    n_in: int            # vector length consumed (fan-in)
    n_out: int           # vector length produced (neurons)
    in_dtype: DType
    w_dtype: DType
    acc_dtype: DType
    out_dtype: DType     # acc_dtype when there is no threshold
    threshold: str | None  # the fused threshold node, if any
    pixels: int = 1      # vectors per image: H'*W' for a convolution, 1 for a dense layer

    @property
    def kind(self) -> str:
        return "mvau"

    @property
    def weight_bits(self) -> int:
        return self.n_in * self.n_out * self.w_dtype.bits


@dataclass(frozen=True)
class Window:
    """Geometry of a sliding window over an (h, w, c) image with ``bits``-bit codes."""
    h: int
    w: int
    c: int
    k: int
    stride: int
    pad: int

    @property
    def out_h(self) -> int:
        return (self.h + 2 * self.pad - self.k) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.w + 2 * self.pad - self.k) // self.stride + 1

    @property
    def in_beats(self) -> int:
        """Pixels (beats of c values) per image in."""
        return self.h * self.w

    @property
    def out_beats(self) -> int:
        """Pixels (beats of c values) per image out: K*K per output pixel."""
        return self.out_h * self.out_w * self.k * self.k


@dataclass(frozen=True)
class SWU:
    name: str            # "<conv>_swu"
    window: Window
    dtype: DType         # element type of the image
    pad_code: int        # the encoding of the padding value

    @property
    def kind(self) -> str:
        return "swu"

    @property
    def n_in(self) -> int:
        return self.window.h * self.window.w * self.window.c


@dataclass(frozen=True)
class MaxPool:
    name: str
    window: Window       # pad 0
    dtype: DType

    @property
    def kind(self) -> str:
        return "maxpool"

    @property
    def n_in(self) -> int:
        return self.window.h * self.window.w * self.window.c


@dataclass(frozen=True)
class ArgMax:
    name: str
    n_in: int
    in_dtype: DType
    out_dtype: DType

    @property
    def kind(self) -> str:
        return "argmax"


@dataclass(frozen=True)
class Plan:
    input_shape: tuple
    input_dtype: DType
    engines: tuple

    @property
    def mvaus(self) -> list:
        return [e for e in self.engines if isinstance(e, MVAU)]


SUPPORTED = ("conv2d+threshold, maxpool, flatten, dense (+threshold), argmax as a chain ending in argmax")


def _code(value: int, dtype: DType) -> int:
    if dtype.kind == "bipolar":
        return int(value > 0)
    return int(value) & ((1 << dtype.bits) - 1)


def plan(graph: Graph) -> Plan:
    """Group the graph's nodes into engines; unsupported graphs raise HdlgenError."""
    if graph.input_type.dtype.kind != "uint" or graph.input_type.dtype.bits > 8:
        raise HdlgenError(f"model {graph.name}: the hardware input takes uint8 pixels or narrower, "
                          f"the graph's input is {graph.input_type.dtype}")
    nodes = list(graph.nodes)
    engines = []
    prev = graph.input_name
    i = 0
    while i < len(nodes):
        n = nodes[i]
        if n.inputs != (prev,) or len(graph.consumers(prev)) != 1:
            raise HdlgenError(f"model {graph.name}: node {n.name!r} does not continue a single chain; "
                              f"this hardware generator supports {SUPPORTED}")
        x = graph.types()[prev]
        if n.op == "flatten":
            pass
        elif n.op == "dense":
            thr = nodes[i + 1] if i + 1 < len(nodes) and nodes[i + 1].op == "threshold" else None
            if thr is not None and thr.inputs != (n.name,):
                thr = None
            engines.append(MVAU(n.name, x.shape[0], n.type.shape[0], x.dtype, weight_dtype(n), n.type.dtype,
                                thr.type.dtype if thr else n.type.dtype, thr.name if thr else None))
            if thr is not None:
                i += 1
                n = thr
        elif n.op == "conv2d":
            thr = nodes[i + 1] if i + 1 < len(nodes) else None
            if thr is None or thr.op != "threshold" or thr.inputs != (n.name,):
                raise HdlgenError(f"model {graph.name}: convolution {n.name!r} must be followed by a threshold "
                                  f"(supported: {SUPPORTED})")
            h, w, c = x.shape
            k, st, pad = n.attrs["kernel"], n.attrs.get("stride", 1), n.attrs.get("pad", 0)
            win = Window(h, w, c, k, st, pad)
            engines.append(SWU(f"{n.name}_swu", win, x.dtype, _code(pad_value(n, x.dtype), x.dtype)))
            engines.append(MVAU(n.name, k * k * c, n.type.shape[2], x.dtype, weight_dtype(n), n.type.dtype,
                                thr.type.dtype, thr.name, win.out_h * win.out_w))
            i += 1
            n = thr
        elif n.op == "maxpool":
            h, w, c = x.shape
            k = n.attrs["kernel"]
            engines.append(MaxPool(n.name, Window(h, w, c, k, n.attrs.get("stride", k), 0), x.dtype))
        elif n.op == "argmax":
            engines.append(ArgMax(n.name, x.shape[0], x.dtype, n.type.dtype))
        else:
            raise HdlgenError(f"model {graph.name}: node {n.name!r} has op {n.op!r}, which the hardware "
                              f"generator does not support yet (supported: {SUPPORTED})")
        prev = n.name
        i += 1
    clash = sorted({e.name for e in engines if isinstance(e, SWU)} & {nd.name for nd in nodes})
    if clash:
        raise HdlgenError(f"model {graph.name}: engine names {', '.join(clash)} clash with node names; "
                          f"rename the node")
    if not engines or not isinstance(engines[-1], ArgMax) or prev != graph.output:
        raise HdlgenError(f"model {graph.name}: the graph must end in an argmax (supported: {SUPPORTED})")
    for e in engines[:-1]:
        if isinstance(e, MVAU) and e.threshold is None and e is not engines[-2]:
            raise HdlgenError(f"model {graph.name}: dense layer {e.name!r} has no threshold after it; only the "
                              f"last dense layer may output raw scores")
        if isinstance(e, MVAU) and e.w_dtype.kind != "bipolar":
            raise HdlgenError(f"model {graph.name}: layer {e.name!r} has {e.w_dtype} weights; this hardware "
                              f"takes binary (bipolar) weights only")
        if isinstance(e, MVAU) and e.in_dtype.kind not in ("bipolar", "uint"):
            raise HdlgenError(f"model {graph.name}: layer {e.name!r} takes {e.in_dtype} inputs; supported are "
                              f"bipolar and unsigned inputs")
    return Plan(graph.input_type.shape, graph.input_type.dtype, tuple(engines))
