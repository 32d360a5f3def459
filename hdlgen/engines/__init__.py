"""Engine kinds: each hardware engine in one place, model side (this package, NumPy only) and
RTL side (:mod:`hdlgen.rtl.components`). See README.md in this folder for adding one.

The registry maps a kind's name to its model side (:class:`~.base.EngineKind`); the planner,
the folding, the resource estimate, the top-level assembler and the build loop over it.
"""

from __future__ import annotations

from ..errors import HdlgenError
from .argmax import ArgMax, ArgMaxKind
from .base import EngineKind, NoKnobs, Window, divisors, require_complete
from .decimate import Decimate, DecimateKind
from .delay import Delay, DelayKind
from .fork import Fork, ForkKind
from .globalsum import GlobalSum, GlobalSumKind
from .maxpool import MaxPool, MaxPoolKind
from .mvau import MVAU, MvauFold, MvauKind
from .select import SelectKind, SelectThreshold
from .swu import SWU, SwuKind

REGISTRY: dict = {}


def register(cls) -> EngineKind:
    """Add engine kind ``cls`` (a complete :class:`EngineKind` subclass) to the registry."""
    require_complete(cls)
    if cls.kind in REGISTRY:
        raise ValueError(f"engine kind {cls.kind!r} is registered twice")
    REGISTRY[cls.kind] = kind = cls()
    return kind


for _cls in (MvauKind, SwuKind, DecimateKind, MaxPoolKind, ForkKind, DelayKind, SelectKind, GlobalSumKind,
             ArgMaxKind):
    register(_cls)


def kind_of(name: str) -> EngineKind:
    """The registered kind ``name``; an unknown name is an error listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise HdlgenError(f"unknown engine {name!r} (known: {', '.join(REGISTRY)})") from None


def engine_kind(spec) -> EngineKind:
    """The registered kind of an engine ``spec``."""
    return kind_of(spec.kind)


def claimants(op: str) -> list:
    """The kinds that implement IR op ``op`` as a layer, in registration order."""
    return [k for k in REGISTRY.values() if op in k.ops]


def has_knobs(kind: EngineKind) -> bool:
    return kind.Knobs is not NoKnobs


__all__ = ["REGISTRY", "ArgMax", "Decimate", "Delay", "EngineKind", "Fork", "GlobalSum", "MaxPool", "MVAU",
           "MvauFold", "NoKnobs", "SWU", "SelectThreshold", "Window", "claimants", "divisors", "engine_kind",
           "has_knobs", "kind_of", "register"]
