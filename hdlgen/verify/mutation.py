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
    """Why a run of a mutant is caught (``run``: ``outputs``, ``tlast_missing``, ``hung``, as
    the Verilator and Icarus benches report them), or "survived"."""
    if run.hung:
        return "hung"
    if run.tlast_missing:
        return f"tlast missing on {run.tlast_missing} beat(s)"
    outputs = np.asarray(run.outputs)
    if len(outputs) != len(expected):
        return f"{len(outputs)} outputs for {len(expected)} images"
    wrong = np.nonzero(outputs != expected)[0]
    return f"{len(wrong)} wrong output(s)" if len(wrong) else "survived"


def check(core, images: np.ndarray, expected: np.ndarray, simulate, *, per_kind: int = 4, seed: int = 1,
          log=print) -> list[Outcome]:
    """Run every mutant of the core folder ``core``; ``simulate(folder, images)`` runs one core
    and returns an object with ``outputs``, ``tlast_missing`` and ``hung``."""
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


def simulator(name: str, lanes: int):
    """``simulate(folder, images)`` for the mutation check: ``icarus`` (no build, slow per
    cycle: a few images) or ``harness`` (a Verilator build per mutant, then fast)."""
    from ..build.design import CORE_NAME
    from ..engines.ports import OUTPUT_BYTES
    from ..sim.harness import build_harness
    from ..sim.icarus import run_icarus

    if name == "icarus":
        return lambda folder, images: run_icarus(folder, images, lanes, 8 * OUTPUT_BYTES)
    if name == "harness":
        def run(folder, images):
            sources = [folder / f"{CORE_NAME}.v", *sorted(p for p in folder.glob("*.v") if p.stem != CORE_NAME)]
            model = build_harness(sources, CORE_NAME, folder / "harness", progress=False)
            return model.run(images, None, lanes=lanes, work_dir=folder, progress=False)
        return run
    raise HdlgenError(f"unknown simulator {name!r} for the mutation check (icarus, harness)")


def mutation_check(design, images: np.ndarray, simulator_name: str, *, per_kind: int = 4, seed: int = 1,
                   log=print) -> dict:
    """Emit ``design``'s core, check that it passes on ``images``, then run its mutants; the
    summary (:func:`summary`) with the model, image count and simulator."""
    from ..build.design import write_core
    from ..golden import classify

    expected = classify(design.graph, images)
    simulate = simulator(simulator_name, design.folding.in_lanes)
    with tempfile.TemporaryDirectory(prefix="hdlgen-core-") as tmp:
        core = Path(tmp) / "rtl"
        write_core(design, core)
        clean = verdict(simulate(core, images), expected)
        if clean != "survived":
            raise HdlgenError(f"the unmutated core already fails: {clean}")
        outcomes = check(core, images, expected, simulate, per_kind=per_kind, seed=seed, log=log)
    s = summary(outcomes)
    s.update(images=int(len(images)), simulator=simulator_name, seed=seed)
    return s


def main(argv=None) -> int:
    from ..build.design import make_design
    from ..model import load_graph

    p = argparse.ArgumentParser(prog="python -m hdlgen.verify.mutation",
                                description="Inject small faults into a model's emitted core and count how "
                                            "many the bench catches on the model's shipped images.")
    p.add_argument("--model", default="mlp-fashion", help="shipped model name, checkpoint or IR graph")
    p.add_argument("--per-kind", type=int, default=4, help="mutants of each kind (default 4)")
    p.add_argument("--images", type=int, default=8, help="shipped test images per run (default 8)")
    p.add_argument("--simulator", choices=("icarus", "harness"), default="icarus",
                   help="icarus (default; a few images) or harness (Verilator, one build per mutant)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="build/mutation", help="folder for summary.md and summary.json")
    args = p.parse_args(argv)
    try:
        loaded = load_graph(args.model)
        if loaded.samples is None:
            raise HdlgenError(f"model {args.model} ships no test images")
        design = make_design(loaded.graph, loaded.name)
        x = loaded.samples[0][:args.images]
        s = mutation_check(design, x, args.simulator, per_kind=args.per_kind, seed=args.seed)
        s["model"] = loaded.name
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
        title = f"Mutation check: {loaded.name}, {len(x)} images, {args.simulator}"
        (out / "summary.md").write_text(markdown(s, title))
        print(f"{s['killed']} of {s['mutants']} mutants killed; {out / 'summary.md'}")
    except HdlgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
