"""The ``build`` and ``models`` commands: ordered steps over one design (``sim`` is in
:mod:`hdlgen.build.sim_command`).

build:  model -> IR -> plan + folding -> memory images -> Verilog core -> board project
        (wrapper, XDC, Vivado TCL) -> Yosys estimate -> report
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from ..engines import engine_kind
from ..errors import HdlgenError
from ..fold import Folding
from ..golden import classify
from ..model import DEFAULT_MODEL, LoadedModel, load_graph, shipped_models
from .clocking import ClockedWrapper, compute_mmcm
from .design import CORE_NAME, Design, make_design, write_core
from .outdir import staged_output

def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def design_from_args(args, board=None) -> tuple:
    """(LoadedModel, Design) from the --model / --folding / --fps / --clock-mhz options; with a
    board, a folding that cannot fit it is refused before anything is built."""
    clock = args.clock_mhz if args.clock_mhz is not None else 200.0
    fps = getattr(args, "fps", None)
    for flag, value in (("--clock-mhz", clock), ("--fps", fps)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise HdlgenError(f"{flag} must be a positive number, not {value}")
    loaded = load_graph(args.model)
    folding = Folding.load(args.folding) if getattr(args, "folding", None) else None
    design = make_design(loaded.graph, loaded.name, folding, clock, fps, board)
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


# -- build -------------------------------------------------------------------------------------

def cli_build(args) -> int:
    import boards

    board = boards.get(args.board)
    if args.clock_mhz is None:
        args.clock_mhz = board.default_clock_mhz
    out = Path(args.out) if args.out else Path("build") / board.name
    loaded, design, clock = design_from_args(args, board)
    compute_mmcm(board.clock_mhz_in, clock, board.family, board.speed_grade)   # before any slow step
    with staged_output(out, args.force) as work:
        log(f"building {loaded.name} for {board.name} ({board.part}) at {clock:g} MHz into {out}")
        return build(loaded, design, board, clock, work, synth=not args.no_synth, shown=out)


def build(loaded: LoadedModel, design: Design, board, clock: float, out: Path, synth: bool = True,
          shown: Path | None = None) -> int:
    """Write the build into ``out`` (``shown``: the folder it will end up in, for messages)."""
    from . import report as report_mod

    rtl = out / "rtl"
    sources = write_core(design, rtl)
    shown = shown or out
    log(f"  core: {shown / 'rtl'}: {', '.join(p.name for p in sources)} + {len(design.images)} layers of "
        f".mem files")
    design.graph.save(out / "model" / "graph")
    (out / "model" / "folding.json").write_text(json.dumps(design.folding.to_json(), indent=1) + "\n")
    project = board_project(loaded, design, board, clock, out, sources)
    log(f"  vivado: {shown / 'vivado'}")
    resources = None
    if synth:
        resources = synthesize_core(out, rtl, sources, board)
    data = report_data(loaded, design, board, clock, project, resources)
    report_mod.write_report(out, data)
    log(f"  report: {shown / 'report.md'}")
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
    from .vivado import write_vivado_project

    mmcm = compute_mmcm(board.clock_mhz_in, clock, board.family, board.speed_grade)
    x, labels = self_test_set(loaded, design)
    wrapper = ClockedWrapper(design.accelerator(True), board, clock, images=x, labels=labels,
                             core_module=CORE_NAME)
    mems = sorted(p for p in (out / "rtl").iterdir() if p.suffix == ".mem")
    project = write_vivado_project(out / "vivado", board, sources, mems, clock, "hdlgen", top=wrapper,
                                   core_top=CORE_NAME)
    log(f"  clock: MMCM {board.clock_mhz_in:g} -> {float(mmcm.output_mhz):g} MHz")
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
    recorded = meta.get("accuracy") if isinstance(meta.get("accuracy"), dict) else {}
    fractions = {k: v for k, v in recorded.items()
                 if isinstance(v, float) and 0.0 <= v <= 1.0 and k in ("float", "integer", "golden")}
    if fractions:
        model["accuracy_recorded"] = {"source": "the checkpoint's training log", "images": recorded.get("test_images"),
                                      **fractions}
    if loaded.samples is not None and loaded.samples[1] is not None and len(loaded.samples[0]):
        x, y = loaded.samples
        model["accuracy_measured"] = {"golden": round(float((classify(g, x) == np.asarray(y)).mean()), 4),
                                      "images": int(len(x)), "source": "the model's shipped test images"}
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
