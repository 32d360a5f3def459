"""From IR nodes to hardware engines.

The IR says *what* is computed; a plan groups nodes into the engines that compute it:

- ``MVAU`` (matrix-vector-activation unit): a ``dense`` node, fused with the ``threshold``
  node that follows it when there is one.
- ``ArgMax``: the label select at the end.

``flatten`` costs nothing in hardware: the stream already carries pixels in the flattened
(row-major, channel-fastest) order.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HdlgenError
from ..ir import DType, Graph
from ..ir.ops import weight_dtype


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

    @property
    def kind(self) -> str:
        return "mvau"

    @property
    def weight_bits(self) -> int:
        return self.n_in * self.n_out * self.w_dtype.bits


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


SUPPORTED = "flatten, dense (+threshold), argmax as a chain ending in argmax"


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
        elif n.op == "argmax":
            engines.append(ArgMax(n.name, x.shape[0], x.dtype, n.type.dtype))
        else:
            raise HdlgenError(f"model {graph.name}: node {n.name!r} has op {n.op!r}, which the hardware "
                              f"generator does not support yet (supported: {SUPPORTED})")
        prev = n.name
        i += 1
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
