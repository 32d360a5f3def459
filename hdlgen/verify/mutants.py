"""Small faults injected into an emitted core, to show that the benches catch them.

A mutant is one edit of one file of a core folder (``hdlgen_accel.v`` and its ``.mem`` files):

- ``mem-bit``: one bit of a weight or threshold memory word flipped;
- ``count-bound``: a counter's end value off by one (``x == 5'h1b`` -> ``5'h1a``), the
  address and fold counters that walk memories and windows;
- ``step``: a counter's increment doubled (``x + 1'h1`` -> ``x + 2'h2``), addresses skipped;
- ``compare``: a threshold compare off by one (``>=`` -> ``>``);
- ``lane-swap``: two equal-width slices of one bus exchanged (``x[15:8]`` <-> ``x[7:0]``),
  lanes of a stream delivered in the wrong order.

:func:`mutants` lists them, a few per kind chosen with a seed; :func:`apply` writes one into
a copy of the core. Some mutants cannot change any output (a threshold no accumulator value
reaches, a bit of a padding word): the kill rate says how many the benches caught, not how
many were catchable.
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

CORE_FILE = "hdlgen_accel.v"
KINDS = ("mem-bit", "count-bound", "step", "compare", "lane-swap")

_BOUND = re.compile(r"(== )(\d+)'h([0-9a-f]+);")
_STEP = re.compile(r"(\+ )1'h1;")
_COMPARE = re.compile(r"\) >= \$signed\(")
_SLICE = re.compile(r"(\\?[\w$]+)\[(\d+):(\d+)\]")


@dataclass(frozen=True)
class Mutant:
    kind: str
    file: str        # relative to the core folder
    line: int        # 0-based line of the file (the word, for a .mem file)
    old: str
    new: str

    def describe(self) -> str:
        return f"{self.kind}: {self.file}:{self.line + 1}: {self.old.strip()} -> {self.new.strip()}"


def _bound_edits(line: str):
    m = _BOUND.search(line)
    if m and int(m.group(3), 16) > 0:
        width, value = m.group(2), int(m.group(3), 16)
        yield line[:m.start()] + f"== {width}'h{value - 1:x};" + line[m.end():]


def _step_edits(line: str):
    m = _STEP.search(line)
    if m and "assign" in line:
        yield line[:m.start()] + "+ 2'h2;" + line[m.end():]


def _compare_edits(line: str):
    if _COMPARE.search(line):
        yield _COMPARE.sub(") > $signed(", line, count=1)


def _lane_swap_edits(line: str):
    if "assign" not in line:
        return
    slices = list(_SLICE.finditer(line))
    for i, a in enumerate(slices):
        for b in slices[i + 1:]:
            width_a = int(a.group(2)) - int(a.group(3))
            width_b = int(b.group(2)) - int(b.group(3))
            if a.group(1) == b.group(1) and width_a == width_b and a.group(0) != b.group(0):
                yield line[:a.start()] + b.group(0) + line[a.end():b.start()] + a.group(0) + line[b.end():]
                return


_VERILOG_EDITS = {"count-bound": _bound_edits, "step": _step_edits, "compare": _compare_edits,
                  "lane-swap": _lane_swap_edits}


def _candidates(core: Path) -> dict:
    found = {kind: [] for kind in KINDS}
    lines = (core / CORE_FILE).read_text().splitlines()
    for i, line in enumerate(lines):
        for kind, edits in _VERILOG_EDITS.items():
            for new in edits(line):
                found[kind].append(Mutant(kind, CORE_FILE, i, line, new))
    for mem in sorted(core.glob("*.mem")):
        words = mem.read_text().splitlines()
        for i, word in enumerate(words):
            if word.strip():
                found["mem-bit"].append(Mutant("mem-bit", mem.name, i, word, word))
    return found


def mutants(core, per_kind: int = 4, seed: int = 1) -> list[Mutant]:
    """Up to ``per_kind`` mutants of each kind in the core folder ``core``, chosen with ``seed``."""
    rng = random.Random(seed)
    chosen = []
    for kind, sites in _candidates(Path(core)).items():
        for m in rng.sample(sites, min(per_kind, len(sites))):
            if kind == "mem-bit":
                value = int(m.old, 16)
                bit = rng.randrange(len(m.old) * 4)
                m = Mutant(kind, m.file, m.line, m.old, format(value ^ (1 << bit), f"0{len(m.old)}x"))
            chosen.append(m)
    return chosen


def apply(core, mutant: Mutant, out) -> Path:
    """A copy of the core folder ``core`` in ``out`` with ``mutant`` applied."""
    out = Path(out)
    shutil.copytree(core, out)
    path = out / mutant.file
    lines = path.read_text().splitlines()
    if lines[mutant.line] != mutant.old:
        raise ValueError(f"{mutant.file}:{mutant.line + 1} is not the line the mutant was made for")
    lines[mutant.line] = mutant.new
    path.write_text("\n".join(lines) + "\n")
    return out
