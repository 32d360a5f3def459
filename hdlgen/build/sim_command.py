"""The ``sim`` command: model -> design -> Verilog core -> Verilator -> stream test images,
compare every output with the golden model, measure cycles per image and latency.

The default bench is the compiled harness (:mod:`hdlgen.sim.harness`), optionally sharded
over ``--jobs`` processes (:mod:`hdlgen.sim.shards`); ``--bench cocotb`` runs the cocotb
bench (``sim/bench_axis.py``) instead, in one process. Both give the same outputs and cycle
numbers for the same images, stall probabilities and seed.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from ..golden import classify
from ..model import LoadedModel
from ..sim.verify import verify
from .design import CORE_NAME, write_core
from .flow import design_from_args, log

TIMING_RULE = ("cycles per image: (t_out[n-1] - t_out[k]) / (n-1-k), k = n//2, over the back-to-back "
               "stream of the images named; latency: the first of them, entering an idle pipeline, "
               "from its first beat in to its output")


def images_arg(text: str) -> int | None:
    """``--images``: a positive count, or ``all`` (None)."""
    if text == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        raise HdlgenError(f"--images must be a number of images or 'all', not {text!r}") from None
    if count < 1:
        raise HdlgenError(f"--images must be at least 1, not {count}")
    return count


def sim_images(loaded: LoadedModel, data: str | None, count: int | None):
    """The first *count* (all when None) test images and labels, and where they came from."""
    if count is not None and count < 1:
        raise HdlgenError(f"--images must be at least 1, not {count}")
    if data is None:
        if loaded.samples is None:
            raise HdlgenError(f"model {loaded.path} ships no test images (samples.npz); pass --data DIR")
        x, y = loaded.samples
        source = f"{len(x)} test images shipped with {loaded.name}"
    else:
        from ..nn.data import load_dataset
        dataset = loaded.graph.meta.get("dataset")
        if not dataset:
            raise HdlgenError(f"model {loaded.path} does not say which dataset it was trained on")
        x, y = load_dataset(data, dataset, "test")
        source = f"{dataset} test split from {data}"
    count = len(x) if count is None else count
    if count > len(x):
        raise HdlgenError(f"--images {count}: only {len(x)} images available ({source})")
    return np.ascontiguousarray(x[:count]), np.asarray(y[:count]), source


def _model(bench: str, sources, work: Path):
    if bench == "cocotb":
        from ..sim.runner import build_model
        return build_model(sources, CORE_NAME, work / "verilator")
    from ..sim.harness import build_harness
    return build_harness(sources, CORE_NAME, work / "harness")


def _run_json(r) -> dict:
    return {"matched": r.n_out - len(r.mismatches), "mismatched": len(r.mismatches), "outputs": r.n_out,
            "hung": bool(r.hung), "passed": bool(r.passed), "stall_in": r.stall_in, "stall_out": r.stall_out,
            "processes": len(r.shards), "cycles": r.cycles, "simulated_cycles_per_second": round(r.cycles_per_s)}


def cli_sim(args) -> int:
    import boards

    count = images_arg(args.images)
    if args.jobs < 1:
        raise HdlgenError(f"--jobs must be at least 1, not {args.jobs}")
    if args.jobs > 1 and args.bench == "cocotb":
        raise HdlgenError("--jobs shards the images over harness processes; the cocotb bench runs in one "
                          "(use --bench harness, or --jobs 1)")
    loaded, design, clock = design_from_args(args, boards.get(args.board))
    x, y, source = sim_images(loaded, args.data, count)
    work = Path(args.work) if args.work else Path("build") / "sim" / loaded.name
    rtl = work / "rtl"
    log(f"emitting Verilog for {loaded.name} into {rtl}")
    sources = write_core(design, rtl)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The golden model runs while Verilator builds and the harness simulates; outputs
        # are compared with it afterwards.
        golden_run = pool.submit(classify, design.graph, x)
        model = _model(args.bench, sources, work)
        t0 = time.time()
        report = verify(model, x, lanes=design.folding.in_lanes, work_dir=rtl, stalls=not args.no_stalls,
                        seed=args.seed, jobs=args.jobs, log=log)
        golden = golden_run.result()
    report = report.compared(golden)
    runs = [("no stalls", report.timing)] + ([("random stalls", report.stalled)] if report.stalled else [])
    timing = report.timing
    pred = design.prediction
    measured = timing.cycles_per_image   # None for one image: nothing to measure a period on
    result = {
        "model": loaded.name,
        "images": len(x),
        "source": source,
        "bench": args.bench,
        "runs": {name: _run_json(r) for name, r in runs},
        "all_matched": report.passed,
        **report.versus(pred),
        "timing_measured_on": {**timing.timing_source(), "rule": TIMING_RULE},
        "clock_mhz": clock,
        "images_per_second": None if measured is None else round(clock * 1e6 / measured, 1),
        "golden_accuracy_on_these_images": round(float((golden == y).mean()), 4),
        "folding": design.folding.to_json(),
        "folding_notes": list(design.folding_notes),
        "build_seconds": round(model.build_s, 1),
        "seconds": round(time.time() - t0, 1),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print_text(result, runs, pred, clock)
    return 0 if result["all_matched"] else 1


def _print_text(result: dict, runs, pred: dict, clock: float) -> None:
    n = result["images"]
    for name, r in runs:
        status = f"HUNG after {r.n_out} outputs; " if r.hung else ""
        print(f"{name:>14}: {status}{r.n_out - len(r.mismatches)}/{n} images match the golden model")
    measured = result["cycles_per_image"]
    if measured is None:
        if not runs[0][1].hung:
            print(f"cycles per image: not measured ({n} image(s); measuring needs 2 or more), "
                  f"{pred['cycles_per_image']} predicted")
        return
    src = result["timing_measured_on"]
    print(f"cycles per image: {measured:g} measured at steady state, {pred['cycles_per_image']} predicted "
          f"({result['model_error_percent']:+.2f}%), bottleneck {pred['bottleneck']}")
    print(f"latency: {result['latency_cycles']} cycles measured, {pred['latency_cycles']} predicted")
    print(f"throughput: {result['images_per_second']:,.0f} images/s at {clock:g} MHz")
    print(f"timing from images {src['first_image']}-{src['first_image'] + src['images'] - 1} in one stream; "
          f"{result['bench']} simulated {runs[0][1].cycles_per_s:,.0f} cycles/s "
          f"in {len(runs[0][1].shards)} process(es)")
