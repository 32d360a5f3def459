"""The mutation check: does the bench notice when the core is wrong?

Each mutant of :mod:`hdlgen.verify.mutants` is written into a copy of the core and run on the
same images; it is *killed* when any output differs from the golden model's, an output beat
lacks ``tlast``, the run hangs, or the simulator refuses the core. The kill rate is the share
killed. Command line::

    python -m hdlgen.verify.mutation --model mlp-fashion --per-kind 4 --images 8 --out build/mutation
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from .mutants import KINDS, Mutant, apply, mutants


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    how: str          # what gave it away, or "survived"


def verdict(run, expected: np.ndarray) -> str:
    """Why a run of a mutant is caught (``run``: outputs, all_tlast, hung), or "survived"."""
    if run.hung:
        return "hung"
    if not run.all_tlast:
        return "tlast missing"
    wrong = np.nonzero(np.asarray(run.outputs) != expected)[0]
    return f"{len(wrong)} wrong output(s)" if len(wrong) else "survived"


def check(core, images: np.ndarray, expected: np.ndarray, simulate, *, per_kind: int = 4, seed: int = 1,
          log=print) -> list[Outcome]:
    """Run every mutant of the core folder ``core``; ``simulate(folder, images)`` runs one core
    and returns an object with ``outputs``, ``all_tlast`` and ``hung``."""
    outcomes = []
    chosen = mutants(core, per_kind, seed)
    with tempfile.TemporaryDirectory(prefix="hdlgen-mutants-") as tmp:
        for i, m in enumerate(chosen):
            t0 = time.monotonic()
            try:
                how = verdict(simulate(apply(core, m, Path(tmp) / f"m{i}"), images), expected)
            except HdlgenError as e:
                how = f"simulator refused it: {str(e).splitlines()[0][:120]}"
            outcomes.append(Outcome(m, how != "survived", how))
            log(f"[{i + 1}/{len(chosen)}] {'killed' if how != 'survived' else 'SURVIVED'} ({how}, "
                f"{time.monotonic() - t0:.0f} s): {m.describe()[:140]}")
    return outcomes


def summary(outcomes: list[Outcome]) -> dict:
    per_kind = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.mutant.kind == kind]
        if mine:
            per_kind[kind] = {"mutants": len(mine), "killed": sum(o.killed for o in mine)}
    killed = sum(o.killed for o in outcomes)
    return {"mutants": len(outcomes), "killed": killed,
            "kill_rate": killed / len(outcomes) if outcomes else None, "per_kind": per_kind,
            "outcomes": [dict(asdict(o.mutant), killed=o.killed, how=o.how) for o in outcomes]}


def markdown(s: dict, title: str) -> str:
    lines = [f"# {title}", "",
             f"{s['killed']} of {s['mutants']} mutants killed ({100 * (s['kill_rate'] or 0):.0f}%).", "",
             "| kind | mutants | killed |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['mutants']} | {v['killed']} |" for k, v in s["per_kind"].items()]
    lines += ["", "| mutant | verdict |", "|---|---|"]
    for o in s["outcomes"]:
        m = Mutant(o["kind"], o["file"], o["line"], o["old"], o["new"])
        lines.append(f"| `{m.describe()[:150]}` | {o['how']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from ..build.design import make_design, write_core
    from ..golden import classify
    from ..model import load_graph
    from ..sim.icarus import run_icarus

    p = argparse.ArgumentParser(prog="python -m hdlgen.verify.mutation",
                                description="Inject small faults into a model's emitted core and count how "
                                            "many the Icarus bench catches on the model's shipped images.")
    p.add_argument("--model", default="mlp-fashion", help="shipped model name, checkpoint or IR graph")
    p.add_argument("--per-kind", type=int, default=4, help="mutants of each kind (default 4)")
    p.add_argument("--images", type=int, default=8, help="shipped test images per run (default 8)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="build/mutation", help="folder for summary.md and summary.json")
    args = p.parse_args(argv)
    try:
        loaded = load_graph(args.model)
        if loaded.samples is None:
            raise HdlgenError(f"model {args.model} ships no test images")
        design = make_design(loaded.graph, loaded.name)
        out = Path(args.out)
        x = loaded.samples[0][:args.images]
        expected = classify(loaded.graph, x)
        lanes = design.folding.in_lanes
        with tempfile.TemporaryDirectory(prefix="hdlgen-core-") as tmp:
            core = Path(tmp) / "rtl"
            write_core(design, core)
            clean = run_icarus(core, x, lanes, 8)
            if verdict(clean, expected) != "survived":
                raise HdlgenError(f"the unmutated core already fails: {verdict(clean, expected)}")
            outcomes = check(core, x, expected, lambda d, imgs: run_icarus(d, imgs, lanes, 8),
                             per_kind=args.per_kind, seed=args.seed)
        s = summary(outcomes)
        s.update(model=loaded.name, images=int(len(x)), simulator="icarus", seed=args.seed)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
        (out / "summary.md").write_text(markdown(s, f"Mutation check: {loaded.name}, {len(x)} images, Icarus"))
        print(f"{s['killed']} of {s['mutants']} mutants killed; {out / 'summary.md'}")
    except HdlgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
