"""What every engine kind provides on the model side, and the helpers they share.

An engine kind is a subclass of :class:`EngineKind` registered in :mod:`hdlgen.engines`. The
base class holds no behaviour: every method is required, and :func:`require_complete` refuses
a kind that leaves one out, so a forgotten method is an error when the kind is registered, not
a silent default when a design is planned, folded or estimated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import HdlgenError
from ..ir import DType


def divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


def pixel_code(value: int, dtype: DType) -> int:
    """The bit pattern of one value of ``dtype`` (bipolar +1 -> 1, -1 -> 0)."""
    if dtype.kind == "bipolar":
        return int(value > 0)
    return int(value) & ((1 << dtype.bits) - 1)


@dataclass(frozen=True)
class Window:
    """Geometry of a sliding window over an (h, w, c) image."""
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
class NoKnobs:
    """Fold knobs of an engine that has none: it runs at the pace its geometry sets."""


def knobs_to_json(kind: str, knobs) -> dict:
    return {"engine": kind, **{f.name: getattr(knobs, f.name) for f in fields(knobs)}}


def knobs_from_json(cls, entry: dict, where: str):
    """``cls`` (a frozen dataclass of integer knobs) from a folding-file entry; errors name
    ``where`` and the missing or unexpected keys."""
    names = {f.name for f in fields(cls)}
    given = set(entry) - {"engine"}
    if given != names:
        raise HdlgenError(f"{where}: expected the keys {', '.join(sorted(names)) or '(none)'}, got "
                          f"{', '.join(sorted(given)) or '(none)'}")
    values = {}
    for name in sorted(names):
        v = entry[name]
        if isinstance(v, bool) or not isinstance(v, int) and not (isinstance(v, str) and v.strip().isdigit()):
            raise HdlgenError(f"{where}: {name} must be an integer, not {v!r}")
        values[name] = int(v)
    return cls(**values)


@dataclass(frozen=True)
class Cost:
    """Resource estimate of one engine."""
    lut: float
    bram36: float


@dataclass(frozen=True)
class Floor:
    """A floor under an engine's resources from its knobs alone (see
    :func:`hdlgen.build.design.resource_floor`): ``width`` ranks engines by how many input
    bits they combine per cycle, ``what`` says so in words."""
    lut: int
    memory_bits: int
    width: int = 0
    what: str = ""


LUTRAM_BITS = 2048
BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def bram36(width: int, depth: int) -> float:
    """RAMB36 (in halves: RAMB18) for a ``width`` x ``depth`` memory; 0 for LUT RAM sizes."""
    if width * depth <= LUTRAM_BITS:
        return 0.0
    halves = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)
    return halves / 2


@dataclass(frozen=True)
class MemImage:
    """One memory's contents: ``words`` of ``width`` bits, written to ``file`` (``$readmemh``)."""
    file: str
    width: int
    words: list


class EngineKind:
    """The model side of one engine kind. Subclasses set the class attributes and define every
    method below; ``spec`` is the kind's frozen spec, ``knobs`` its fold knobs.

    Attributes: ``kind`` (the name folding files and reports use), ``Knobs`` (the frozen
    dataclass of its fold knobs, :class:`NoKnobs` when it has none), ``ops`` (the IR ops whose
    node it can implement as a layer; empty for engines other kinds place, such as a fork),
    ``paced`` (True when its cycles per image follow from its geometry alone, one pixel per
    cycle, whatever the folding), ``balances`` (True for a FIFO whose depth the cycle model
    derives, passed as ``sizes[name]``: :func:`hdlgen.fold.timeline.delay_depths`).

    For a kind with knobs, ``cycles`` must follow from the spec and knobs alone: the automatic
    folding calls it with ``lanes_in(spec, knobs, ())``.
    """

    kind: str
    Knobs: type
    ops: tuple
    paced: bool
    balances: bool

    # -- kinds that implement IR nodes (``ops`` not empty) --
    def accepts(self, node, graph) -> str | None:
        """None when this kind can implement ``node``; else why not, in words."""
    def lower(self, node, lowering) -> None:
        """Add the engines implementing ``node`` to ``lowering`` (:class:`hdlgen.fold.plan.Lowering`)."""

    # -- kinds with fold knobs (``Knobs`` is not :class:`NoKnobs`) --
    def candidates(self, spec) -> list:
        """Knobs the automatic folding may choose, the slowest and cheapest first."""
    def rank(self, spec, knobs) -> tuple:
        """Sort key among candidates that meet a target: smaller is preferred."""
    def check(self, spec, knobs) -> None:
        """Raise HdlgenError naming the layer when ``knobs`` do not fit ``spec``."""
    def explain(self, spec, knobs, period: int) -> str:
        """Why it has its knobs, in words."""

    # -- every kind --
    def validate(self, spec, plan) -> str | None:
        """None when ``spec`` can be built in ``plan``; else why not, in words."""
    def outputs(self, spec) -> int:
        """Number of output streams."""
    def lanes_in(self, spec, knobs, src_lanes: tuple) -> tuple:
        """Values per beat it takes on each input, given those its sources carry."""
    def lanes_out(self, spec, knobs, lanes_in: tuple) -> int:
        """Values per beat on each of its outputs."""
    def cycles(self, spec, knobs, lanes_in: tuple) -> int:
        """Cycles per image at steady state."""
    def depth(self, spec, knobs) -> int:
        """Pipeline registers from input to output (the RTL component's ``latency``)."""
    def timeline(self, spec, knobs, ins: list) -> tuple:
        """(first, last) output beat time of the first image through an idle pipeline, from the
        (first, last) beat times on its inputs."""
    def estimate(self, spec, knobs, lanes_in: tuple, sizes: dict) -> Cost:
        """LUT and BRAM36 estimate; ``sizes`` holds derived sizes (delay FIFO depths)."""
    def floor(self, spec, knobs) -> Floor:
        """A floor under its resources, from the knobs alone."""
    def pack(self, spec, knobs, lanes_in: tuple, graph):
        """Its packed artifact, from the IR node's parameters: an object whose ``memories`` are
        :class:`MemImage` s, which the RTL side takes as built; None when it has none."""
    def interfaces(self, spec, knobs) -> tuple:
        """Extra top-level interfaces it needs (:class:`hdlgen.engines.ports.Interface`)."""
    def describe(self, spec, knobs, artifact, sizes: dict) -> dict:
        """Its entry in the report's layer table: ``in_shape``, ``out_shape`` and, where it has
        them, ``pe``, ``simd``, ``weight_bits``, ``memory`` and the like."""


ATTRIBUTES = ("kind", "Knobs", "ops", "paced", "balances")
EVERY = ("validate", "outputs", "lanes_in", "lanes_out", "cycles", "depth", "timeline", "estimate", "floor",
         "pack", "interfaces", "describe")
FOR_OPS = ("accepts", "lower")
FOR_KNOBS = ("candidates", "rank", "check", "explain")


def require_complete(cls) -> None:
    """Raise TypeError naming what ``cls`` leaves out of :class:`EngineKind`."""
    missing = [a for a in ATTRIBUTES if not hasattr(cls, a)]
    if not missing:
        needed = EVERY + (FOR_OPS if cls.ops else ()) + (FOR_KNOBS if cls.Knobs is not NoKnobs else ())
        missing = [m for m in needed if getattr(cls, m) is getattr(EngineKind, m)]
    if missing:
        raise TypeError(f"engine kind {cls.__name__} does not define {', '.join(missing)}")
