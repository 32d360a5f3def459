"""The integer IR: a DAG of nodes over exactly typed integer tensors.

A :class:`Graph` has one input tensor, nodes in topological order (each node produces one
tensor named after it, which any number of later nodes may read: that is a fork), and one
output tensor. It saves to ``<stem>.json`` (structure, attributes, types, metadata) plus
``<stem>.npz`` (parameters) and loads back without torch.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ops import OPS
from .types import DType, TensorType

FORMAT = "hdlgen-ir"
VERSION = 1


@dataclass
class Node:
    name: str
    op: str
    inputs: tuple
    attrs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    type: TensorType | None = None  # filled in by Graph.infer()


class Graph:
    def __init__(self, name: str, input_name: str, input_type: TensorType, meta: dict | None = None):
        self.name = name
        self.input_name = input_name
        self.input_type = input_type
        self.nodes: list[Node] = []
        self.output: str | None = None
        self.meta = dict(meta or {})

    # -- building -------------------------------------------------------------------------
    def add(self, name: str, op: str, inputs, attrs=None, params=None) -> str:
        """Append a node; returns the name of the tensor it produces."""
        if isinstance(inputs, str):
            inputs = (inputs,)
        params = {k: np.ascontiguousarray(v) for k, v in (params or {}).items()}
        node = Node(name, op, tuple(inputs), dict(attrs or {}), params)
        self._infer_node(node)  # raises before the graph changes
        self.nodes.append(node)
        self.output = name
        return name

    # -- queries --------------------------------------------------------------------------
    def types(self) -> dict:
        out = {self.input_name: self.input_type}
        out.update({n.name: n.type for n in self.nodes})
        return out

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self, tensor: str) -> list:
        return [n for n in self.nodes if tensor in n.inputs]

    def weight_bits(self) -> int:
        """Storage of every weight parameter at its declared type (thresholds not counted)."""
        from .ops import weight_dtype

        return sum(int(n.params["weight"].size) * weight_dtype(n).bits for n in self.nodes if "weight" in n.params)

    @property
    def output_type(self) -> TensorType:
        return self.types()[self.output]

    # -- checking -------------------------------------------------------------------------
    def _infer_node(self, node: Node):
        if node.op not in OPS:
            raise ValueError(f"node {node.name!r}: unknown op {node.op!r} (known: {', '.join(sorted(OPS))})")
        known = self.types()
        known.pop(node.name, None)
        if node.name == self.input_name or any(n.name == node.name for n in self.nodes if n is not node):
            raise ValueError(f"node name {node.name!r} is used twice")
        missing = [i for i in node.inputs if i not in known]
        if missing:
            raise ValueError(f"node {node.name!r} reads {missing}, which no earlier node produces")
        node.type = OPS[node.op](node, [known[i] for i in node.inputs])

    def validate(self):
        """Re-check every node in order; raises ValueError naming the first bad one."""
        seen = []
        nodes, self.nodes = self.nodes, seen
        try:
            for node in nodes:
                seen.append(node)
                self._infer_node(node)
        finally:
            self.nodes = nodes
        if self.output is None or self.output not in self.types():
            raise ValueError(f"graph output {self.output!r} is not a tensor of the graph")

    # -- serialization --------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "input": {"name": self.input_name, "shape": list(self.input_type.shape),
                      "dtype": str(self.input_type.dtype)},
            "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "attrs": n.attrs,
                       "params": sorted(n.params), "shape": list(n.type.shape),
                       "dtype": str(n.type.dtype)} for n in self.nodes],
            "output": self.output,
            "meta": self.meta,
        }

    def save(self, stem) -> tuple:
        """Write ``stem.json`` and ``stem.npz`` byte-for-byte deterministically."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        js, npz = stem.with_suffix(".json"), stem.with_suffix(".npz")
        js.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        # np.savez stamps the current time into the zip; write entries with a fixed date.
        with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as zf:
            for n in self.nodes:
                for key in sorted(n.params):
                    info = zipfile.ZipInfo(f"{n.name}/{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with zf.open(info, "w") as f:
                        np.lib.format.write_array(f, n.params[key], allow_pickle=False)
        return js, npz

    @classmethod
    def load(cls, path) -> "Graph":
        """Load ``stem.json`` + ``stem.npz`` (either path, or the stem, may be given)."""
        path = Path(path)
        js = path if path.suffix == ".json" else path.with_suffix(".json")
        npz = js.with_suffix(".npz")
        data = json.loads(js.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{js} is not an hdlgen IR file (format {data.get('format')!r})")
        if data.get("version") != VERSION:
            raise ValueError(f"{js} has IR version {data.get('version')}, this hdlgen reads {VERSION}")
        inp = data["input"]
        g = cls(data["name"], inp["name"], TensorType(tuple(inp["shape"]), DType.parse(inp["dtype"])),
                data.get("meta"))
        with np.load(npz, allow_pickle=False) as arrays:
            for n in data["nodes"]:
                params = {k: arrays[f"{n['name']}/{k}"] for k in n["params"]}
                g.add(n["name"], n["op"], n["inputs"], n["attrs"], params)
                stored = TensorType(tuple(n["shape"]), DType.parse(n["dtype"]))
                if g.nodes[-1].type != stored:
                    raise ValueError(f"{js}: node {n['name']!r} is stored as {stored} "
                                     f"but its parameters give {g.nodes[-1].type}")
        g.output = data["output"]
        g.validate()
        return g

    def summary(self) -> str:
        lines = [f"graph {self.name}: {self.input_name} {self.input_type}"]
        for n in self.nodes:
            lines.append(f"  {n.name:<16} {n.op:<10} {','.join(n.inputs):<16} -> {n.type}")
        return "\n".join(lines)
