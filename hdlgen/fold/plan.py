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

- a 1x1 ``conv2d`` without padding needs no window: with stride 1 its MVAU reads the pixels
  as they come; with a larger stride a ``Decimate`` engine drops the pixels it skips.
- ``select_threshold`` (a binarized residual add): a ``SelectThreshold`` engine after the MVAU
  of its accumulator input, which then has no threshold of its own; its select input (the
  shortcut) passes through a ``Delay`` FIFO holding whole pixels, deep enough for the other
  branch's latency (the depth comes from the cycle model, :mod:`.folding`).
- a tensor read by several nodes goes through a ``Fork`` that copies each beat to every reader.
- ``globalsum``: a ``GlobalSum`` engine (one accumulator per channel).

``flatten`` costs nothing in hardware: the stream already carries pixels in the flattened
(row-major, channel-fastest) order.

A plan lists its engines in an order where every engine comes after the engines it reads;
``Plan.inputs`` names the streams each one reads: ``"input"`` (the accelerator's input), an
engine's name, or ``"<fork>/<k>"``, the k-th copy of a fork.
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
class Decimate:
    """Keeps pixel (S*y, S*x) of an (h, w, c) image for every output pixel (y, x): the input of
    a 1x1 convolution with stride S."""
    name: str            # "<conv>_dec"
    window: Window       # k = 1, pad 0
    dtype: DType

    @property
    def kind(self) -> str:
        return "decimate"


@dataclass(frozen=True)
class Fork:
    name: str            # "<tensor>_fork"
    ways: int
    size: int            # values per image
    dtype: DType

    @property
    def kind(self) -> str:
        return "fork"


@dataclass(frozen=True)
class Delay:
    """A FIFO of whole pixels (``channels`` values per beat) on a residual network's shortcut."""
    name: str            # "<select_threshold node>_delay"
    pixels: int          # pixels per image
    channels: int
    dtype: DType

    @property
    def kind(self) -> str:
        return "delay"


@dataclass(frozen=True)
class SelectThreshold:
    """+1 where an MVAU's accumulator reaches the threshold chosen by the select value."""
    name: str            # the select_threshold node's name
    mvau: str            # the MVAU whose raw accumulators it reads
    channels: int
    pixels: int

    @property
    def kind(self) -> str:
        return "select"


@dataclass(frozen=True)
class GlobalSum:
    name: str
    pixels: int          # H*W
    channels: int
    in_dtype: DType
    out_dtype: DType

    @property
    def kind(self) -> str:
        return "globalsum"


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
    inputs: dict = None   # engine name -> names of the streams it reads

    def __post_init__(self):
        if self.inputs is None:  # a chain: each engine reads the one before
            names = ["input"] + [e.name for e in self.engines]
            object.__setattr__(self, "inputs", {e.name: (names[i],) for i, e in enumerate(self.engines)})

    @property
    def mvaus(self) -> list:
        return [e for e in self.engines if isinstance(e, MVAU)]

    def engine(self, name: str):
        for e in self.engines:
            if e.name == name:
                return e
        raise KeyError(name)


SUPPORTED = ("conv2d + threshold, conv2d + select_threshold (residual add), maxpool, globalsum, flatten, "
             "dense (+ threshold), argmax at the end")


def _code(value: int, dtype: DType) -> int:
    if dtype.kind == "bipolar":
        return int(value > 0)
    return int(value) & ((1 << dtype.bits) - 1)


def plan(graph: Graph) -> Plan:
    """Group the graph's nodes into engines; unsupported graphs raise HdlgenError."""
    if graph.input_type.dtype.kind != "uint" or graph.input_type.dtype.bits > 8:
        raise HdlgenError(f"model {graph.name}: the hardware input takes uint8 pixels or narrower, "
                          f"the graph's input is {graph.input_type.dtype}")
    types = graph.types()
    engines, inputs = [], {}
    stream = {graph.input_name: "input"}   # tensor -> stream carrying it
    copies = {}                            # tensor -> fork copies not yet handed out
    fused = set()                          # threshold nodes computed inside an MVAU

    def unsupported(n, why):
        return HdlgenError(f"model {graph.name}: node {n.name!r} ({n.op}) {why} "
                           f"(the hardware generator supports {SUPPORTED})")

    def take(tensor):
        """The stream of ``tensor`` for one more reader, forking it on its first read."""
        if tensor not in copies:
            readers = len(graph.consumers(tensor))
            if readers > 1:
                t = types[tensor]
                fork = Fork(f"{tensor}_fork", readers, t.size, t.dtype)
                add(fork, stream[tensor])
                copies[tensor] = [f"{fork.name}/{k}" for k in range(readers)]
            else:
                copies[tensor] = [stream[tensor]]
        return copies[tensor].pop(0)

    def add(engine, *srcs):
        engines.append(engine)
        inputs[engine.name] = tuple(srcs)
        return engine.name

    def only_reader(n):
        readers = graph.consumers(n.name)
        return readers[0] if len(readers) == 1 else None

    for n in graph.nodes:
        if n.name in fused:
            continue
        x = types[n.inputs[0]]
        if n.op == "flatten":
            stream[n.name] = take(n.inputs[0])
            continue
        if n.op in ("dense", "conv2d"):
            if x.dtype.kind not in ("bipolar", "uint", "int"):
                raise unsupported(n, f"takes {x.dtype} inputs")
            nxt = only_reader(n)
            thr = nxt if nxt is not None and nxt.op == "threshold" else None
            feeds_select = nxt is not None and nxt.op == "select_threshold" and nxt.inputs[0] == n.name
            src = take(n.inputs[0])
            if n.op == "dense":
                e = MVAU(n.name, x.shape[0], n.type.shape[0], x.dtype, weight_dtype(n), n.type.dtype,
                         thr.type.dtype if thr else n.type.dtype, thr.name if thr else None)
            else:
                if thr is None and not feeds_select:
                    raise unsupported(n, "must be followed by a threshold or a select_threshold")
                h, w, c = x.shape
                k, st, pad = n.attrs["kernel"], n.attrs.get("stride", 1), n.attrs.get("pad", 0)
                win = Window(h, w, c, k, st, pad)
                if k == 1 and pad == 0 and st > 1:
                    src = add(Decimate(f"{n.name}_dec", win, x.dtype), src)
                elif not (k == 1 and pad == 0):
                    src = add(SWU(f"{n.name}_swu", win, x.dtype, _code(pad_value(n, x.dtype), x.dtype)), src)
                e = MVAU(n.name, k * k * c, n.type.shape[2], x.dtype, weight_dtype(n), n.type.dtype,
                         thr.type.dtype if thr else n.type.dtype, thr.name if thr else None, win.out_h * win.out_w)
            add(e, src)
            out = n.name
            if thr is not None:
                fused.add(thr.name)
                out = thr.name
            stream[out] = n.name
        elif n.op == "select_threshold":
            acc, sel = n.inputs
            producer = graph.node(acc)
            if producer.op not in ("dense", "conv2d") or only_reader(producer) is not n:
                raise unsupported(n, f"must read the accumulator of a convolution or dense layer that feeds "
                                     f"nothing else, not {acc!r}")
            shape = n.type.shape
            pixels, c = (shape[0] * shape[1], shape[2]) if len(shape) == 3 else (1, shape[0])
            delay = add(Delay(f"{n.name}_delay", pixels, c, types[sel].dtype), take(sel))
            add(SelectThreshold(n.name, acc, c, pixels), stream[acc], delay)
            stream[n.name] = n.name
        elif n.op == "maxpool":
            h, w, c = x.shape
            k = n.attrs["kernel"]
            add(MaxPool(n.name, Window(h, w, c, k, n.attrs.get("stride", k), 0), x.dtype), take(n.inputs[0]))
            stream[n.name] = n.name
        elif n.op == "globalsum":
            h, w, c = x.shape
            add(GlobalSum(n.name, h * w, c, x.dtype, n.type.dtype), take(n.inputs[0]))
            stream[n.name] = n.name
        elif n.op == "argmax":
            add(ArgMax(n.name, x.shape[0], x.dtype, n.type.dtype), take(n.inputs[0]))
            stream[n.name] = n.name
        elif n.op == "threshold":
            raise unsupported(n, f"must directly follow the convolution or dense layer it thresholds")
        else:
            raise unsupported(n, "is not supported by the hardware generator yet")
    names = [e.name for e in engines]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:   # an engine named after a node ("<conv>_swu", "<tensor>_fork", ...) met a node of that name
        raise HdlgenError(f"model {graph.name}: engine names {', '.join(clash)} clash with node names; "
                          f"rename the node")
    if not engines or not isinstance(engines[-1], ArgMax) or graph.output != engines[-1].name:
        raise HdlgenError(f"model {graph.name}: the graph must end in an argmax (supported: {SUPPORTED})")
    leftovers = [t for t, c in copies.items() if c]
    if leftovers:
        raise HdlgenError(f"model {graph.name}: tensors {leftovers} are read by nodes the hardware does not build")
    feeds = {src.split("/")[0] for srcs in inputs.values() for src in srcs}
    for e in engines[:-1]:
        if e.name not in feeds:
            raise HdlgenError(f"model {graph.name}: the result of {e.name!r} is never used; only the output "
                              f"may end the graph")
    selects = {e.mvau for e in engines if isinstance(e, SelectThreshold)}
    for e in engines[:-1]:
        if not isinstance(e, MVAU):
            continue
        if e.threshold is None and e.name not in selects and inputs[engines[-1].name] != (e.name,):
            raise HdlgenError(f"model {graph.name}: dense layer {e.name!r} has no threshold after it; only the "
                              f"last dense layer may output raw scores")
        if e.w_dtype.kind != "bipolar":
            raise HdlgenError(f"model {graph.name}: layer {e.name!r} has {e.w_dtype} weights; this hardware "
                              f"takes binary (bipolar) weights only")
    return Plan(graph.input_type.shape, graph.input_type.dtype, tuple(engines), inputs)
