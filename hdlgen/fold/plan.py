"""From IR nodes to hardware engines.

The IR says *what* is computed; a plan groups nodes into the engines that compute it. Every
node but a ``flatten`` (free in hardware: the stream already carries pixels in the flattened
order) is implemented by one registered engine kind that claims its op
(:func:`hdlgen.engines.claimants`): the kind the caller names for that layer, else the first
that accepts the node. The kind's ``lower`` adds the node's engines through a
:class:`Lowering` (an MVAU puts a sliding window in front of a convolution and takes in the
threshold after it; a threshold select puts a delay FIFO on its shortcut).

A tensor read by several nodes goes through a ``Fork`` that copies each beat to every reader.

A plan lists its engines in an order where every engine comes after the engines it reads;
``Plan.inputs`` names the streams each one reads: ``"input"`` (the accelerator's input), an
engine's name, or ``"<fork>/<k>"``, the k-th copy of a fork.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engines import REGISTRY, Fork, claimants, engine_kind, has_knobs, kind_of
from ..errors import HdlgenError
from ..ir import DType, Graph

FREE_OPS = ("flatten",)
OUTPUT_KIND = "argmax"   # the accelerator's output port carries one class index per image


@dataclass(frozen=True)
class Plan:
    input_shape: tuple
    input_dtype: DType
    engines: tuple
    inputs: dict = None   # engine name -> names of the streams it reads
    choices: dict = None  # layer name -> (engine kind, why it was chosen)

    def __post_init__(self):
        if self.inputs is None:  # a chain: each engine reads the one before
            names = ["input"] + [e.name for e in self.engines]
            object.__setattr__(self, "inputs", {e.name: (names[i],) for i, e in enumerate(self.engines)})
        if self.choices is None:
            object.__setattr__(self, "choices", {})

    @property
    def layers(self) -> list:
        """The engines with fold knobs, in stream order, each named after its IR layer."""
        return [e for e in self.engines if has_knobs(engine_kind(e))]

    @property
    def mvaus(self) -> list:
        return [e for e in self.engines if e.kind == "mvau"]

    def engine(self, name: str):
        for e in self.engines:
            if e.name == name:
                return e
        raise KeyError(name)


def supported() -> str:
    """The IR ops the registered engine kinds implement, in words."""
    ops = sorted({op for k in REGISTRY.values() for op in k.ops} | set(FREE_OPS))
    return f"{', '.join(ops)}; the graph ends in an {OUTPUT_KIND}"


class Lowering:
    """What an engine kind's ``lower`` sees of the plan being built: the graph's tensor types,
    the streams that carry tensors so far, and the engines added so far."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.types = graph.types()
        self.engines, self.inputs = [], {}
        self._stream = {graph.input_name: "input"}   # tensor -> stream carrying it
        self._copies = {}                            # tensor -> fork copies not yet handed out
        self.fused = set()                           # nodes computed inside another node's engine

    def take(self, tensor: str) -> str:
        """The stream of ``tensor`` for one more reader, forking it on its first read."""
        if tensor not in self._copies:
            readers = len(self.graph.consumers(tensor))
            if readers > 1:
                t = self.types[tensor]
                fork = Fork(f"{tensor}_fork", readers, t.size, t.dtype)
                self.add(fork, self._stream[tensor])
                self._copies[tensor] = [f"{fork.name}/{k}" for k in range(readers)]
            else:
                self._copies[tensor] = [self._stream[tensor]]
        return self._copies[tensor].pop(0)

    def stream(self, tensor: str) -> str:
        """The stream carrying ``tensor`` (without counting a reader)."""
        return self._stream[tensor]

    def add(self, engine, *srcs: str) -> str:
        """Append ``engine`` reading streams ``srcs``; returns its output stream's name."""
        self.engines.append(engine)
        self.inputs[engine.name] = tuple(srcs)
        return engine.name

    def produce(self, tensor: str, stream: str):
        """``tensor`` is carried by ``stream`` from now on."""
        self._stream[tensor] = stream

    def fuse(self, node):
        """``node`` is computed by an engine already added; the plan skips it."""
        self.fused.add(node.name)

    def only_reader(self, node):
        readers = self.graph.consumers(node.name)
        return readers[0] if len(readers) == 1 else None

    def engine(self, name: str):
        return next(e for e in self.engines if e.name == name)

    def leftovers(self) -> list:
        return [t for t, c in self._copies.items() if c]


def _choose(graph: Graph, node, named: str | None) -> tuple:
    """(kind, why) implementing ``node``: the kind ``named`` for it, else the first that accepts it."""
    kinds = claimants(node.op)
    if named is not None:
        kind = kind_of(named)
        if kind not in kinds:
            raise HdlgenError(f"model {graph.name}: engine {named!r} does not implement node {node.name!r} "
                              f"({node.op}); engines for {node.op}: {', '.join(k.kind for k in kinds) or 'none'}")
        why = kind.accepts(node, graph)
        if why is not None:
            raise HdlgenError(f"model {graph.name}: node {node.name!r} ({node.op}) {why} (engine {named!r})")
        return kind, "named in the folding"
    reasons = []
    for kind in kinds:
        why = kind.accepts(node, graph)
        if why is None:
            alone = len(kinds) == 1
            return kind, (f"the only engine for {node.op}" if alone else f"the first engine for {node.op} "
                          f"that takes it (of {', '.join(k.kind for k in kinds)})")
        reasons.append(why)
    if reasons:
        raise HdlgenError(f"model {graph.name}: node {node.name!r} ({node.op}) {'; '.join(reasons)} "
                          f"(the hardware generator supports {supported()})")
    how = ("must directly follow the convolution or dense layer it thresholds" if node.op == "threshold"
           else "is not supported by the hardware generator yet")
    raise HdlgenError(f"model {graph.name}: node {node.name!r} ({node.op}) {how} "
                      f"(the hardware generator supports {supported()})")


def plan(graph: Graph, engines: dict | None = None) -> Plan:
    """Group the graph's nodes into engines; ``engines`` names the engine kind of some layers
    (the others get the first that accepts them). Unsupported graphs raise HdlgenError."""
    if graph.input_type.dtype.kind != "uint" or graph.input_type.dtype.bits > 8:
        raise HdlgenError(f"model {graph.name}: the hardware input takes uint8 pixels or narrower, "
                          f"the graph's input is {graph.input_type.dtype}")
    engines = dict(engines or {})
    unknown = sorted(set(engines) - {n.name for n in graph.nodes})
    if unknown:
        raise HdlgenError(f"folding names layers the model does not have: {', '.join(unknown)}")
    low = Lowering(graph)
    choices = {}
    for n in graph.nodes:
        if n.name in low.fused:
            continue
        if n.op in FREE_OPS:
            low.produce(n.name, low.take(n.inputs[0]))
            continue
        kind, why = _choose(graph, n, engines.get(n.name))
        choices[n.name] = (kind.kind, why)
        kind.lower(n, low)
    found, inputs = low.engines, low.inputs
    names = [e.name for e in found]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:   # an engine named after a node ("<conv>_swu", "<tensor>_fork", ...) met a node of that name
        raise HdlgenError(f"model {graph.name}: engine names {', '.join(clash)} clash with node names; "
                          f"rename the node")
    if not found or found[-1].kind != OUTPUT_KIND or graph.output != found[-1].name:
        raise HdlgenError(f"model {graph.name}: the graph must end in an {OUTPUT_KIND} (supported: {supported()})")
    if low.leftovers():
        raise HdlgenError(f"model {graph.name}: tensors {low.leftovers()} are read by nodes the hardware does "
                          f"not build")
    feeds = {src.split("/")[0] for srcs in inputs.values() for src in srcs}
    for e in found[:-1]:
        if e.name not in feeds:
            raise HdlgenError(f"model {graph.name}: the result of {e.name!r} is never used; only the output "
                              f"may end the graph")
    p = Plan(graph.input_type.shape, graph.input_type.dtype, tuple(found), inputs, choices)
    for e in found:
        why = engine_kind(e).validate(e, p)
        if why is not None:
            raise HdlgenError(f"model {graph.name}: {why}")
    return p
