"""The ``build``, ``sim`` and ``models`` commands: ordered steps over one design.

build:  model -> IR -> plan + folding -> memory images -> Verilog core -> board project
        (wrapper, XDC, Vivado TCL) -> Yosys estimate -> report
sim:    model -> design -> Verilog core -> Verilator -> stream test images, compare with golden
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..engines import engine_kind
from ..errors import HdlgenError
from ..fold import Folding
from ..golden import classify
from ..model import DEFAULT_MODEL, LoadedModel, load_graph, shipped_models
from .design import CORE_NAME, Design, make_design, write_core

MARKER = ".hdlgen-build"


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def prepare_out_dir(out: Path, force: bool):
    """Refuse to write into a directory that holds files hdlgen did not write, unless forced."""
    if out.exists() and not out.is_dir():
        raise HdlgenError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file() and not force:
        raise HdlgenError(f"output directory {out} holds files hdlgen did not write; "
                          f"choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(f"written by hdlgen {__version__}\n")


def design_from_args(args, board=None) -> tuple:
    """(LoadedModel, Design) from the --model / --folding / --fps / --clock-mhz options; with a
    board, a folding that cannot fit it is refused before anything is built."""
    loaded = load_graph(args.model)
    clock = args.clock_mhz if args.clock_mhz is not None else 200.0
    if clock <= 0:
        raise HdlgenError(f"--clock-mhz must be positive, not {clock}")
    folding = Folding.load(args.folding) if getattr(args, "folding", None) else None
    design = make_design(loaded.graph, loaded.name, folding, clock, getattr(args, "fps", None), board)
    return loaded, design, clock


def layer_table(design: Design) -> list:
    """The report's layer entries: every engine in stream order, described by its kind."""
    stages = {s["name"]: s for s in design.prediction["stages"]}
    rows = []
    for e in design.plan.engines:
        d = engine_kind(e).describe(e, design.folding.knobs(e), design.images.get(e.name), design.delay_depths)
        row = {"name": e.name, "kind": e.kind, "cycles_per_image": stages[e.name]["cycles"],
               "in_shape": d.pop("in_shape"), "out_shape": d.pop("out_shape"),
               "pe": None, "simd": None, "weight_bits": None, "memory": None, **d}
        if e.name in design.plan.choices:
            row["engine_choice"] = design.plan.choices[e.name][1]
        rows.append(row)
    return rows


def cli_models(args) -> int:
    names = shipped_models()
    if not names:
        print("no shipped models")
        return 0
    for name in names:
        readme = Path(__file__).resolve().parents[2] / "models" / name / "README.md"
        first = ""
        if readme.is_file():
            lines = [ln.strip("# ").strip() for ln in readme.read_text().splitlines() if ln.strip()]
            first = lines[0] if lines else ""
            if first.startswith(f"{name}:"):
                first = first[len(name) + 1:].strip()
        mark = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name + mark:<30} {first}")
    return 0


# -- sim ---------------------------------------------------------------------------------------

def sim_images(loaded: LoadedModel, data: str | None, count: int):
    if count < 1:
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
    if count > len(x):
        raise HdlgenError(f"--images {count}: only {len(x)} images available ({source})")
    return np.ascontiguousarray(x[:count]), np.asarray(y[:count]), source


def cli_sim(args) -> int:
    import boards
    from ..sim.runner import build_model

    loaded, design, clock = design_from_args(args, boards.get(args.board))
    x, y, source = sim_images(loaded, args.data, args.images)
    work = Path(args.work) if args.work else Path("build") / "sim" / loaded.name
    rtl = work / "rtl"
    log(f"emitting Verilog for {loaded.name} into {rtl}")
    sources = write_core(design, rtl)
    golden = classify(design.graph, x)
    model = build_model(sources, CORE_NAME, work / "verilator")
    t0 = time.time()
    log(f"simulating {len(x)} images without stalls (timing)")
    timing = model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl, stall_in=0.0, stall_out=0.0,
                       seed=args.seed)
    runs = [("no stalls", timing)]
    if not args.no_stalls:
        log(f"simulating {len(x)} images with random input stalls and output backpressure")
        runs.append(("random stalls", model.run(x, golden, lanes=design.folding.in_lanes, work_dir=rtl,
                                                stall_in=0.3, stall_out=0.3, seed=args.seed)))
    pred = design.prediction
    measured = timing.cycles_per_image
    if measured is None:
        raise HdlgenError("too few images to measure cycles per image at steady state: use --images 4 or more")
    result = {
        "model": loaded.name,
        "images": len(x),
        "source": source,
        "runs": {name: {"matched": r.n_out - len(r.mismatches), "mismatched": len(r.mismatches),
                        "outputs": r.n_out, "hung": bool(r.hung), "passed": bool(r.passed),
                        "stall_in": r.stall_in, "stall_out": r.stall_out} for name, r in runs},
        "all_matched": all(r.passed for _, r in runs),
        "cycles_per_image": measured,
        "predicted_cycles_per_image": pred["cycles_per_image"],
        "model_error_percent": round(100 * (measured - pred["cycles_per_image"]) / pred["cycles_per_image"], 2),
        "latency_cycles": timing.latency_cycles,
        "predicted_latency_cycles": pred["latency_cycles"],
        "clock_mhz": clock,
        "images_per_second": round(clock * 1e6 / measured, 1),
        "golden_accuracy_on_these_images": round(float((golden == y).mean()), 4),
        "folding": design.folding.to_json(),
        "folding_notes": list(design.folding_notes),
        "seconds": round(time.time() - t0, 1),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for name, r in runs:
            status = f"HUNG after {r.n_out} outputs; " if r.hung else ""
            print(f"{name:>14}: {status}{r.n_out - len(r.mismatches)}/{len(x)} images match the golden model")
        print(f"cycles per image: {measured:g} measured at steady state, {pred['cycles_per_image']} predicted "
              f"({result['model_error_percent']:+.2f}%), bottleneck {pred['bottleneck']}")
        print(f"latency: {timing.latency_cycles} cycles measured, {pred['latency_cycles']} predicted")
        print(f"throughput: {result['images_per_second']:,.0f} images/s at {clock:g} MHz")
    return 0 if result["all_matched"] else 1


# -- build -------------------------------------------------------------------------------------

def cli_build(args) -> int:
    import boards

    board = boards.get(args.board)
    if args.clock_mhz is None:
        args.clock_mhz = board.default_clock_mhz
    out = Path(args.out) if args.out else Path("build") / board.name
    loaded, design, clock = design_from_args(args, board)
    prepare_out_dir(out, args.force)
    log(f"building {loaded.name} for {board.name} ({board.part}) at {clock:g} MHz into {out}")
    return build(loaded, design, board, clock, out, synth=not args.no_synth)


def build(loaded: LoadedModel, design: Design, board, clock: float, out: Path, synth: bool = True) -> int:
    from . import report as report_mod

    rtl = out / "rtl"
    sources = write_core(design, rtl)
    log(f"  core: {', '.join(str(p) for p in sources)} + {len(design.images)} layers of .mem files")
    design.graph.save(out / "model" / "graph")
    (out / "model" / "folding.json").write_text(json.dumps(design.folding.to_json(), indent=1) + "\n")
    project = board_project(loaded, design, board, clock, out, sources)
    resources = None
    if synth:
        resources = synthesize_core(out, rtl, sources, board)
    data = report_data(loaded, design, board, clock, project, resources)
    report_mod.write_report(out, data)
    log(f"  report: {out / 'report.md'}")
    if resources is not None:
        report_mod.require_fit(resources.resources, board)
    return 0


SELF_TEST_IMAGES = 4


def self_test_set(loaded: LoadedModel, design: Design):
    """A few images for the board's self-test wrapper, with the golden model's labels."""
    if loaded.samples is not None:
        x = loaded.samples[0][:SELF_TEST_IMAGES]
    else:
        rng = np.random.default_rng(0)
        t = design.graph.input_type
        x = rng.integers(0, t.dtype.max + 1, (SELF_TEST_IMAGES,) + t.shape).astype(np.uint8)
    return x, classify(design.graph, x)


def board_project(loaded: LoadedModel, design: Design, board, clock: float, out: Path, sources: list) -> dict:
    """Board wrapper (MMCM + self-test), XDC and Vivado TCL scripts in ``out/vivado``."""
    from .clocking import ClockedWrapper, compute_mmcm
    from .vivado import write_vivado_project

    mmcm = compute_mmcm(board.clock_mhz_in, clock, board.family, board.speed_grade)
    x, labels = self_test_set(loaded, design)
    wrapper = ClockedWrapper(design.accelerator(True), board, clock, images=x, labels=labels,
                             core_module=CORE_NAME)
    mems = sorted(p for p in (out / "rtl").iterdir() if p.suffix == ".mem")
    project = write_vivado_project(out / "vivado", board, sources, mems, clock, "hdlgen", top=wrapper,
                                   core_top=CORE_NAME)
    log(f"  vivado: {out / 'vivado'} (MMCM {board.clock_mhz_in:g} -> {float(mmcm.output_mhz):g} MHz)")
    return {"mmcm": mmcm.to_json(), "self_test_labels": labels.tolist(), "project": project}


def synthesize_core(out: Path, rtl: Path, sources: list, board) -> object:
    """Yosys ``synth_xilinx`` of the core; logs and statistics end up in ``out/synth``."""
    from .synth import synthesize

    result = synthesize(rtl, [p.name for p in sources], CORE_NAME, board.family)
    synth_dir = out / "synth"
    synth_dir.mkdir(exist_ok=True)
    for name in ("synth.ys", "yosys.log", "stat.json"):
        if (rtl / name).exists():
            (rtl / name).replace(synth_dir / name)
    log_file = synth_dir / "yosys.log"
    if log_file.exists():  # drop Yosys's run times so that rebuilds are byte-identical
        lines = log_file.read_text().splitlines(keepends=True)
        log_file.write_text("".join(ln for ln in lines if not ln.startswith(("End of script.", "Time spent:"))))
    (rtl / "netlist.json").unlink(missing_ok=True)
    return result


def report_data(loaded: LoadedModel, design: Design, board, clock: float, project: dict, resources) -> dict:
    g = design.graph
    layers = layer_table(design)
    meta = g.meta
    model = {"name": loaded.name, "source": str(loaded.path)}
    if meta.get("dataset"):
        model["dataset"] = meta["dataset"]
    if isinstance(meta.get("accuracy"), dict):
        model["accuracy"] = meta["accuracy"]
    pred = design.prediction
    return {
        "model": model,
        "board": board.to_json(),
        "clock": {"mhz": float(project["mmcm"]["output_mhz"]), "requested_mhz": clock, "mmcm": project["mmcm"]},
        "layers": layers,
        "folding": design.folding.to_json(),
        "folding_notes": list(design.folding_notes),
        "performance": {"cycles_per_image": pred["cycles_per_image"], "latency_cycles": pred["latency_cycles"],
                        "bottleneck": pred["bottleneck"],
                        "images_per_second": round(float(project["mmcm"]["output_mhz"]) * 1e6 / pred["cycles_per_image"], 1)},
        "input": {"shape": list(g.input_type.shape), "dtype": str(g.input_type.dtype),
                  "axis_lanes": design.folding.in_lanes},
        "synthesis": resources.to_json() if resources is not None else None,
        "self_test": {"images": len(project["self_test_labels"]), "labels": project["self_test_labels"]},
        "notes": ["cycles per image and latency are the cycle model's; `hdlgen sim` measures them under "
                  "Verilator"] + ([] if resources is not None else ["synthesis skipped (--no-synth)"]),
    }
