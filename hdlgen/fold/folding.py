"""Folding: which engine implements each layer and with which fold knobs (how much of it is
computed in parallel), the folding file, and the automatic choice for a target throughput.

Folding file (JSON)::

    {"in_lanes": 4, "layers": {"conv3": {"engine": "mvau", "pe": 4, "simd": 32}, ...}}

``in_lanes`` is the number of input values per beat. A layer's ``engine`` may be left out:
the engine whose knobs are exactly the entry's keys is taken (files written before engines
were named load that way). Layers whose engine has no knobs have no entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from ..engines import REGISTRY, NoKnobs, divisors, engine_kind, has_knobs, kind_of
from ..engines.base import knobs_from_json, knobs_to_json
from ..errors import HdlgenError
from .plan import Plan
from .timeline import fixed_stage, input_size

FORMAT = "{'in_lanes': N, 'layers': {name: {'engine': E, knob: value, ...}}}"


def _kind_of_knobs(knobs):
    found = [k for k in REGISTRY.values() if has_knobs(k) and type(knobs) is k.Knobs]
    if not found:
        raise HdlgenError(f"{knobs!r} are not the fold knobs of any engine")
    return found[0]


def _entry(name: str, entry: dict, source: str):
    """The knobs of folding-file entry ``entry`` for layer ``name``."""
    where = f"{source}: layer {name}"
    if not isinstance(entry, dict):
        raise HdlgenError(f"{where}: expected an object of fold knobs, not {entry!r}")
    if "engine" in entry:
        kind = kind_of(entry["engine"])
        if not has_knobs(kind):
            raise HdlgenError(f"{where}: engine {kind.kind!r} has no fold knobs")
        return knobs_from_json(kind.Knobs, entry, where)
    keys = set(entry)
    matching = [k for k in REGISTRY.values() if has_knobs(k) and {f.name for f in fields(k.Knobs)} == keys]
    if len(matching) != 1:
        named = ", ".join(f"{k.kind} ({', '.join(f.name for f in fields(k.Knobs))})"
                          for k in REGISTRY.values() if has_knobs(k))
        raise HdlgenError(f"{where}: no \"engine\" given and the keys {', '.join(sorted(keys)) or '(none)'} "
                          f"{'fit several engines' if matching else 'fit no engine'}; engines and their knobs: {named}")
    return knobs_from_json(matching[0].Knobs, entry, where)


@dataclass(frozen=True)
class Folding:
    in_lanes: int
    layers: dict  # layer name -> fold knobs of its engine (e.g. MvauFold)

    def __getitem__(self, name):
        return self.layers[name]

    def knobs(self, e):
        """The fold knobs of engine ``e`` of a plan: its layer's entry, or none."""
        return self.layers[e.name] if has_knobs(engine_kind(e)) else NoKnobs()

    def engines(self) -> dict:
        """Layer name -> the engine kind its knobs belong to."""
        return {name: _kind_of_knobs(k).kind for name, k in self.layers.items()}

    def to_json(self) -> dict:
        return {"in_lanes": self.in_lanes,
                "layers": {k: knobs_to_json(_kind_of_knobs(v).kind, v) for k, v in sorted(self.layers.items())}}

    @classmethod
    def from_json(cls, data: dict, source: str = "folding") -> "Folding":
        try:
            in_lanes, layers = int(data["in_lanes"]), data["layers"]
            items = list(layers.items())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise HdlgenError(f"{source}: expected {FORMAT} ({type(e).__name__}: {e})") from None
        return cls(in_lanes, {name: _entry(name, entry, source) for name, entry in items})

    @classmethod
    def load(cls, path) -> "Folding":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise HdlgenError(f"folding file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HdlgenError(f"folding file {path} is not valid JSON: {e}") from None
        return cls.from_json(data, str(path))


def check(plan: Plan, folding: Folding):
    """Raise HdlgenError naming the first layer whose folding does not fit it."""
    n = input_size(plan)
    if folding.in_lanes < 1 or n % folding.in_lanes:
        raise HdlgenError(f"input lanes {folding.in_lanes} do not divide the {n} input values "
                          f"(allowed: {', '.join(map(str, divisors(n)))})")
    for e in plan.layers:
        if e.name not in folding.layers:
            raise HdlgenError(f"folding has no entry for layer {e.name!r}")
        kind, knobs = engine_kind(e), folding[e.name]
        if type(knobs) is not kind.Knobs:
            raise HdlgenError(f"layer {e.name}: the folding gives it the knobs of engine "
                              f"{_kind_of_knobs(knobs).kind!r}, but it is built by engine {kind.kind!r}")
        kind.check(e, knobs)
    extra = set(folding.layers) - {e.name for e in plan.layers}
    if extra:
        raise HdlgenError(f"folding names layers the model does not have: {', '.join(sorted(extra))}")


def auto_fold(plan: Plan, target_cycles: int) -> Folding:
    """The cheapest folding whose every stage takes at most ``target_cycles`` per image: for
    each layer the candidate knobs its engine ranks first among those that meet the target, or
    the fastest when none does. A target below the slowest stage no folding speeds up (a
    sliding window or pooling at one pixel per cycle) is raised to that stage's cycles."""
    if target_cycles < 1:
        raise HdlgenError(f"target of {target_cycles} cycles per image is not possible")
    # No layer needs to be faster than that stage: a target below it would only waste parallelism.
    target_cycles = max(target_cycles, fixed_stage(plan)[1])
    n = input_size(plan)
    lanes = [d for d in divisors(n) if n // d <= target_cycles]
    layers = {}
    for e in plan.layers:
        kind = engine_kind(e)
        best = None
        for knobs in kind.candidates(e):
            cycles = kind.cycles(e, knobs, kind.lanes_in(e, knobs, ()))
            key = (cycles if cycles > target_cycles else 0,) + kind.rank(e, knobs)
            if best is None or key < best[0]:
                best = (key, knobs)
        layers[e.name] = best[1]
    return Folding(lanes[0], layers)
