"""Randomized differential campaign: random networks through export, golden model and the
emitted Verilog under Verilator, every output compared exactly.

    python -m hdlgen.fuzz_campaign --count 200 --seed 1 --out build/fuzz
    python -m hdlgen.fuzz_campaign --seconds 600 --seed 7 --out build/fuzz
    python -m hdlgen.fuzz_campaign --replay 1000123 --out build/fuzz-replay
    python -m hdlgen.fuzz_campaign --seeds 108,120,127 --out build/fuzz-some

Network ``s`` follows from its seed alone (:func:`hdlgen.fuzz.random_network`): its layers,
weights, thresholds, folding, test images and stall pattern. The campaign seed ``X`` runs the
networks ``X * 1000000 + i`` for ``i = 0, 1, ...``. For each network:

1. the graph is saved and loaded back (the IR's JSON + .npz export), and must be unchanged;
2. every MVAU's memory image is unpacked again and must give back the layer's weights and
   threshold decisions;
3. the emitted Verilog runs under Verilator: a run without stalls, whose steady-state cycles
   per image must equal the cycle model's prediction, and a run with random input stalls and
   output backpressure; every output must equal the golden model's.

Networks with the same number of input lanes are verilated together, several to one model (a
wrapper selects the network under test from a file in the run's folder), since compiling the
model costs far more than running it. Output: ``summary.json`` and ``summary.md`` in ``--out``
(rewritten after every group), and a folder per failing network with its design.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

GROUP_SIZE = 8
TIMING_IMAGES = 6
STALL_IMAGES = 8
SEED_STRIDE = 1_000_000


# -- one network -------------------------------------------------------------------------------

def prepare(seed: int, max_cycles: int = 2500) -> dict:
    """Everything about network ``seed`` that does not need a simulator."""
    from .build.design import make_design
    from .fold import plan as make_plan
    from .golden import classify
    from .fuzz import random_network, spec_images
    from .ir import Graph
    from .engines.mvau import hw_accumulator, unpack_mvau

    spec, graph, folding = random_network(seed, max_cycles)
    rng = np.random.default_rng([0x73696d, seed])
    case = {"seed": seed, "spec": spec, "folding": folding.to_json(), "problems": []}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"hdlgen-fuzz-{os.getpid()}"
    graph.save(tmp / "g")
    back = Graph.load(tmp / "g.json")
    shutil.rmtree(tmp, ignore_errors=True)
    if back.to_json() != graph.to_json() or any(
            sorted(a.params) != sorted(b.params) or any(not np.array_equal(a.params[k], b.params[k]) for k in a.params)
            for a, b in zip(back.nodes, graph.nodes)):
        case["problems"].append("IR export: graph changed on save/load")
    design = make_design(back, f"fuzz{seed}", folding)
    p = make_plan(back)
    for e in p.mvaus:
        w = back.node(e.name).params["weight"]
        w = w.reshape(w.shape[0], -1)
        t = back.node(e.threshold).params["thresholds"] if e.threshold else None
        w2, t2 = unpack_mvau(e, folding[e.name], design.images[e.name])
        ok = np.array_equal(w2, w)
        if t is not None:
            acc = e.acc_dtype
            v = np.arange(acc.min, acc.max + 1)
            if hw_accumulator(e).popcount:
                v = v[(v + e.n_in) % 2 == 0]
            ok = ok and t2 is not None and np.array_equal((v[None, :, None] >= t[:, None, :]).sum(-1),
                                                           (v[None, :, None] >= t2[:, None, :]).sum(-1))
        if not ok:
            case["problems"].append(f"pack/unpack: layer {e.name} does not round-trip")
    x = spec_images(rng, back, max(TIMING_IMAGES, STALL_IMAGES))
    case.update(design=design, images=x, golden=classify(back, x),
                stall_in=round(float(rng.uniform(0.05, 0.6)), 3), stall_out=round(float(rng.uniform(0.05, 0.8)), 3),
                stall_seed=int(rng.integers(1 << 30)))
    return case


def describe(case: dict) -> dict:
    """Shape facts of a network for the coverage tables, from its spec and from each engine's
    kind in the registry: the kind's report entry, its fold knobs (and whether each is the
    smallest or largest the kind allows there), its window, its derived FIFO depth."""
    from dataclasses import fields

    from .engines import engine_kind, has_knobs

    d = case["design"]
    spec = case["spec"]
    depths = d.delay_depths
    layers = []
    for e in d.plan.engines:
        kind, knobs = engine_kind(e), d.folding.knobs(e)
        row = {"name": e.name, "kind": e.kind, **kind.describe(e, knobs, d.images.get(e.name), depths)}
        if has_knobs(kind):
            candidates = kind.candidates(e)
            row["knobs"] = {}
            for f in fields(knobs):
                v, allowed = getattr(knobs, f.name), [getattr(c, f.name) for c in candidates]
                row["knobs"][f.name] = {"value": v, "min": v == min(allowed), "max": v == max(allowed)}
        window = getattr(e, "window", None)
        if window is not None:
            row["window"] = {"h": window.h, "w": window.w, "c": window.c, "k": window.k, "stride": window.stride,
                             "pad": window.pad}
        if kind.balances:
            row["fifo_depth"] = depths[e.name]
        layers.append(row)
    return {"kind": spec["kind"], "input": "x".join(map(str, spec["shape"])), "in_bits": spec["in_bits"],
            "in_lanes": d.folding.in_lanes, "layers": layers, "ops": [n.op for n in d.graph.nodes],
            "op_engines": [f"{d.graph.node(name).op} -> {k}" for name, (k, _) in d.plan.choices.items()],
            "blocks": [_block_shape(b) for stage in spec.get("stages", ()) for b in stage],
            "stages": [len(stage) for stage in spec.get("stages", ())]}


def _block_shape(block: dict) -> str:
    """A residual block in words: its shortcut and its convolutions' kernels."""
    shortcut = f"projection stride {block['stride']}" if block["projection"] else "identity"
    return f"{shortcut}, kernels {block['kernels'][0]}/{block['kernels'][1]}"


# -- groups ------------------------------------------------------------------------------------

_MEM = re.compile(r'"([A-Za-z0-9_]+\.mem)"')


def write_group(cases: list, rtl: Path) -> list:
    """Verilog of several networks with the same input lanes behind one wrapper ``fuzz_group``
    that routes the streams to the network named in ``fuzz_select.mem``; returns the sources."""
    from amaranth.back import verilog

    from .rtl import LIBRARY_FILE, LIBRARY_VERILOG, write_mem_files

    lanes = {c["design"].folding.in_lanes for c in cases}
    assert len(lanes) == 1, lanes
    lanes = lanes.pop()
    rtl.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, c in enumerate(cases):
        d = c["design"]
        text = verilog.convert(d.accelerator(True), name=f"n{i}_accel", emit_src=False)
        text = _MEM.sub(lambda m, i=i: f'"n{i}_{m.group(1)}"', text)
        path = rtl / f"n{i}_accel.v"
        path.write_text(text)
        sources.append(path)
        mem = rtl / f"n{i}"
        mem.mkdir(exist_ok=True)
        for f in write_mem_files(mem, d.images):
            f.replace(rtl / f"n{i}_{f.name}")
        mem.rmdir()
    (rtl / LIBRARY_FILE).write_text(LIBRARY_VERILOG)
    sources.append(rtl / LIBRARY_FILE)
    n = len(cases)
    lines = [
        "module fuzz_group (",
        "    input wire clk, input wire rst,",
        f"    input wire [{8 * lanes - 1}:0] s_axis_tdata, input wire s_axis_tvalid,",
        "    output wire s_axis_tready, input wire s_axis_tlast,",
        "    output wire [7:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready,",
        "    output wire m_axis_tlast);",
        "    reg [15:0] sel_mem [0:0];",
        '    initial $readmemh("fuzz_select.mem", sel_mem);',
        "    wire [15:0] sel = sel_mem[0];",
    ]
    for i in range(n):
        lines += [
            f"    wire r{i}, v{i}, l{i}; wire [7:0] d{i};",
            f"    n{i}_accel u{i} (.clk(clk), .rst(rst), .s_axis_tdata(s_axis_tdata),",
            f"        .s_axis_tvalid(s_axis_tvalid && sel == {i}), .s_axis_tready(r{i}), .s_axis_tlast(s_axis_tlast),",
            f"        .m_axis_tdata(d{i}), .m_axis_tvalid(v{i}), .m_axis_tready(m_axis_tready && sel == {i}),",
            f"        .m_axis_tlast(l{i}));",
        ]
    for port, sig in (("s_axis_tready", "r"), ("m_axis_tvalid", "v"), ("m_axis_tlast", "l"), ("m_axis_tdata", "d")):
        expr = " : ".join(f"sel == {i} ? {sig}{i}" for i in range(n)) + (" : " if n else "") + \
            ("8'd0" if sig == "d" else "1'b0")
        lines.append(f"    assign {port} = {expr};")
    lines.append("endmodule")
    top = rtl / "fuzz_group.v"
    top.write_text("\n".join(lines) + "\n")
    return [top] + sources


def run_dir(rtl: Path, index: int) -> Path:
    """A folder for simulating network ``index`` of a group: links to all the group's memory
    files, and the selector."""
    d = rtl / f"run{index}"
    d.mkdir(exist_ok=True)
    for f in rtl.glob("*.mem"):
        link = d / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    (d / "fuzz_select.mem").write_text(f"{index:04x}\n")
    return d


def simulate_case(model, case: dict, work: Path, timeout_cycles: int) -> dict:
    """Timing run and stalled run of one network; the verdict."""
    d = case["design"]
    x, golden = case["images"], case["golden"]
    lanes = d.folding.in_lanes
    pred = d.prediction
    res = {"seed": case["seed"], "problems": list(case["problems"])}
    t0 = time.monotonic()
    timing = model.run(x[:TIMING_IMAGES], golden[:TIMING_IMAGES], lanes=lanes, work_dir=work, progress=False,
                       timeout_cycles=timeout_cycles, seed=case["stall_seed"])
    stalled = model.run(x[:STALL_IMAGES], golden[:STALL_IMAGES], lanes=lanes, work_dir=work, progress=False,
                        stall_in=case["stall_in"], stall_out=case["stall_out"], seed=case["stall_seed"],
                        timeout_cycles=timeout_cycles)
    res["sim_s"] = round(time.monotonic() - t0, 2)
    hung = timing.hung or stalled.hung
    mism = sorted(set(timing.mismatches) | set(stalled.mismatches))
    for name, r in (("timing", timing), ("stalled", stalled)):
        if r.hung:
            res["problems"].append(f"{name} run hung after {r.n_out} of {r.n_images} outputs")
        elif not r.completed:
            res["problems"].append(f"{name} run: {r.n_out} of {r.n_images} outputs, {r.beats_sent} beats taken")
        if r.mismatches:
            res["problems"].append(f"{name} run: outputs of images {list(r.mismatches)} differ from the golden "
                                   f"model (got {[int(r.outputs[i]) for i in r.mismatches]}, "
                                   f"expected {[int(golden[i]) for i in r.mismatches]})")
        if r.extra_outputs or r.tlast_missing:
            res["problems"].append(f"{name} run: {r.extra_outputs} extra output beats, "
                                   f"{r.tlast_missing} without tlast")
        if r.warnings:
            res["problems"].append(f"{name} run: simulator warnings: {r.warnings[0]}")
    measured = timing.cycles_per_image
    res.update(hung=bool(hung), mismatches=len(mism), measured_cycles_per_image=measured,
               predicted_cycles_per_image=pred["cycles_per_image"], latency_cycles=timing.latency_cycles,
               predicted_latency_cycles=pred["latency_cycles"], bottleneck=pred["bottleneck"])
    res["cycle_model_exact"] = measured is not None and measured == pred["cycles_per_image"]
    if measured is not None and not res["cycle_model_exact"]:
        res["problems"].append(f"cycle model: {pred['cycles_per_image']} cycles per image predicted, "
                               f"{measured:g} measured")
    return res


def build_fast(sources, top: str, build_dir: Path):
    """Verilate with the model's C++ compiled at -O0: about three times faster to build than
    Verilator's default -Os, and these runs are short."""
    from .sim.runner import build_model

    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + "OPT_FAST=-O0"
    try:
        return build_model(sources, top, build_dir, progress=False)
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def run_group(cases: list, work: Path, timeout_cycles: int, log) -> list:
    rtl = work / "rtl"
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.monotonic()
    sources = write_group(cases, rtl)
    model = build_fast(sources, "fuzz_group", work / "verilator")
    build_s = time.monotonic() - t0
    log(f"  group of {len(cases)} (lanes {cases[0]['design'].folding.in_lanes}): emitted and verilated "
        f"in {build_s:.1f} s")
    results = []
    for i, c in enumerate(cases):
        try:
            r = simulate_case(model, c, run_dir(rtl, i), timeout_cycles)
        except Exception as e:  # a crash of the flow is a finding too
            r = {"seed": c["seed"], "problems": [f"crash: {type(e).__name__}: {e}"], "hung": False,
                 "mismatches": 0, "cycle_model_exact": False, "traceback": traceback.format_exc()}
        r["shape"] = describe(c)
        r["build_s"] = round(build_s / len(cases), 2)
        results.append(r)
        flag = "ok" if not r["problems"] else "FAIL: " + "; ".join(r["problems"])
        log(f"    seed {c['seed']}: {r['shape']['kind']} {r['shape']['input']} "
            f"u{r['shape']['in_bits']}, {r.get('measured_cycles_per_image')} cycles/image: {flag}")
    shutil.rmtree(work / "verilator", ignore_errors=True)
    return results


# -- summary -----------------------------------------------------------------------------------

def replay_command(seed: int) -> str:
    return f".venv/bin/python -m hdlgen.fuzz_campaign --replay {seed} --out build/fuzz-replay-{seed}"


def coverage(shapes: list) -> dict:
    """Counts of what the networks of ``shapes`` (:func:`describe`) exercised."""
    layers = [l for sh in shapes for l in sh["layers"]]
    knobbed = [l for l in layers if "knobs" in l]
    windows = [(l["kind"], l["window"]) for l in layers if "window" in l]

    def count(values):
        return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: _natural(kv[0]))}

    def knob_values(which):
        return count(f"{l['kind']}.{name}={k['value']}" if which == "value" else f"{l['kind']}.{name}"
                     for l in knobbed for name, k in l["knobs"].items() if which == "value" or k[which])

    return {
        "kinds": count(sh["kind"] for sh in shapes),
        "input_shapes": count(sh["input"] for sh in shapes),
        "input_bits": count(sh["in_bits"] for sh in shapes),
        "in_lanes": count(sh["in_lanes"] for sh in shapes),
        "ops": count(op for sh in shapes for op in sh.get("ops", ())),
        "op_engines": count(c for sh in shapes for c in sh.get("op_engines", ())),
        "engine_kinds": count(l["kind"] for l in layers),
        "networks_with_engine": count(k for sh in shapes for k in {l["kind"] for l in sh["layers"]}),
        "residual_blocks": count(b for sh in shapes for b in sh.get("blocks", ())),
        "blocks_per_stage": count(n for sh in shapes for n in sh.get("stages", ())),
        "fifo_depths": count(l["fifo_depth"] for l in layers if "fifo_depth" in l),
        "layer_fan_in": count(l["in_shape"][-1] for l in knobbed),
        "layer_outputs": count(l["out_shape"][-1] for l in knobbed),
        "layer_dtypes": count(f"{l['kind']} {l['in_dtype']} -> {l['out_dtype']}" for l in knobbed if "in_dtype" in l),
        "knobs": knob_values("value"),
        "knob_at_min": knob_values("min"),
        "knob_at_max": knob_values("max"),
        "windows": count(f"{kind} k{w['k']} s{w['stride']} p{w['pad']}" for kind, w in windows),
        "window_channels": count(f"{kind} c{w['c']}" for kind, w in windows),
        "window_image": count(f"{w['h']}x{w['w']}" for _, w in windows),
    }


def _natural(value) -> list:
    """Sort key of a table entry: its text with the numbers in it compared as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(value))]


def summarize(results: list, started: float, args) -> dict:
    failing = [r for r in results if r["problems"]]
    timed = [r for r in results if r.get("measured_cycles_per_image") is not None]
    return {
        "networks": len(results),
        "passed": len(results) - len(failing),
        "mismatches": sum(1 for r in results if r.get("mismatches")),
        "mismatched_outputs": sum(r.get("mismatches", 0) for r in results),
        "hangs": sum(1 for r in results if r.get("hung")),
        "failures": len(failing),
        "seconds": round(time.monotonic() - started, 1),
        "campaign_seed": args.seed,
        "cycle_model": {"timed": len(timed), "exact": sum(1 for r in timed if r["cycle_model_exact"]),
                        "deviations": [{"seed": r["seed"], "predicted": r["predicted_cycles_per_image"],
                                        "measured": r["measured_cycles_per_image"]}
                                       for r in timed if not r["cycle_model_exact"]]},
        "coverage": coverage([r["shape"] for r in results]),
        "failing": [{"seed": r["seed"], "problems": r["problems"], "replay": replay_command(r["seed"]),
                     "spec": r.get("spec")} for r in failing],
    }


def markdown(s: dict) -> str:
    verdict = "PASS" if s["failures"] == 0 else "FAIL"
    out = [f"# hdlgen fuzz campaign: {verdict}", "",
           f"- networks run: {s['networks']} (campaign seed {s['campaign_seed']}, {s['seconds']} s)",
           f"- mismatches: {s['mismatches']} networks ({s['mismatched_outputs']} outputs)",
           f"- hangs: {s['hangs']}",
           f"- failing networks: {s['failures']}",
           f"- cycle model: {s['cycle_model']['exact']} of {s['cycle_model']['timed']} timed networks exact "
           f"(measured steady-state cycles per image = predicted)", ""]
    if s["failing"]:
        out += ["## Failing networks", ""]
        for f in s["failing"]:
            out += [f"- seed {f['seed']}: {'; '.join(f['problems'])}", f"  replay: `{f['replay']}`"]
        out.append("")
    out += ["## Shapes covered", "", "| what | values (count) |", "| --- | --- |"]
    for key, value in s["coverage"].items():
        text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        out.append(f"| {key} | {text} |")
    out.append("")
    return "\n".join(out)


def write_summary(out: Path, s: dict):
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    (out / "summary.md").write_text(markdown(s))


def keep_failure(out: Path, case: dict, result: dict):
    """The failing network's graph, folding, images and emitted core, for a closer look."""
    from .build.design import write_core

    d = out / f"seed-{case['seed']}"
    d.mkdir(parents=True, exist_ok=True)
    case["design"].graph.save(d / "graph")
    (d / "folding.json").write_text(json.dumps(case["folding"], indent=1) + "\n")
    np.savez(d / "images.npz", x=case["images"], golden=case["golden"])
    write_core(case["design"], d / "rtl")
    (d / "result.json").write_text(json.dumps({k: v for k, v in result.items()}, indent=1, default=str) + "\n")


# -- command line ------------------------------------------------------------------------------

def campaign(seeds, out: Path, deadline: float | None, group_size: int, timeout_cycles: int, log,
             progress=None) -> list:
    """Run the networks of ``seeds`` (an iterator), grouped by input lanes; stops at ``deadline``."""
    results = []
    pending = defaultdict(list)
    work = out / "work"
    started = time.monotonic()

    def flush(lanes):
        cases = pending.pop(lanes)
        rs = run_group(cases, work, timeout_cycles, log)
        for c, r in zip(cases, rs):
            r["spec"] = c["spec"]
            if r["problems"]:
                keep_failure(out, c, r)
        results.extend(rs)
        if progress is not None:
            progress(results)

    exhausted = False
    while not exhausted:
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            seed = next(seeds)
        except StopIteration:
            exhausted = True
            break
        try:
            case = prepare(seed)
        except Exception as e:
            results.append({"seed": seed, "problems": [f"crash before simulation: {type(e).__name__}: {e}"],
                            "hung": False, "mismatches": 0, "cycle_model_exact": False,
                            "shape": {"kind": "?", "input": "?", "in_bits": 0, "in_lanes": 0, "layers": []},
                            "traceback": traceback.format_exc()})
            log(f"    seed {seed}: CRASH {type(e).__name__}: {e}")
            continue
        lanes = case["design"].folding.in_lanes
        pending[lanes].append(case)
        if len(pending[lanes]) >= group_size:
            flush(lanes)
            log(f"  {len(results)} networks in {time.monotonic() - started:.0f} s")
        if deadline is not None and pending:
            # flush the leftovers once running them would reach the deadline, with the costs
            # measured so far (a group's build, a network's runs)
            built = [r for r in results if "build_s" in r]
            per_net = float(np.mean([r.get("sim_s", 3.0) for r in built])) if built else 5.0
            per_group = float(np.mean([r["build_s"] * GROUP_SIZE for r in built])) / 2 if built else 30.0
            waiting = sum(len(v) for v in pending.values())
            if time.monotonic() + per_net * waiting + per_group * len(pending) >= deadline:
                for lanes in sorted(pending, key=lambda k: -len(pending[k])):
                    flush(lanes)
    for lanes in sorted(pending):
        flush(lanes)
    shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdlgen.fuzz_campaign",
                                 description="Random networks through golden model and Verilator, compared exactly.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--count", type=int, default=None, metavar="N", help="run N networks")
    g.add_argument("--seconds", type=float, default=None, metavar="S", help="run networks for about S seconds")
    g.add_argument("--replay", type=int, default=None, metavar="SEED", help="run the one network SEED alone")
    g.add_argument("--seeds", default=None, metavar="S1,S2,...", help="run these networks")
    ap.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    ap.add_argument("--out", default="build/fuzz", metavar="DIR", help="summary folder (default build/fuzz)")
    ap.add_argument("--group", type=int, default=GROUP_SIZE, metavar="G",
                    help=f"networks verilated together (default {GROUP_SIZE})")
    ap.add_argument("--timeout-cycles", type=int, default=50_000, metavar="C",
                    help="a run hangs when no beat moves for C cycles (default 50000)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.count is None and args.seconds is None and args.replay is None and args.seeds is None:
        args.count = 20
    for name in ("count", "seconds", "group"):
        v = getattr(args, name)
        if v is not None and v < 1:
            print(f"error: --{name} must be at least 1, not {v:g}", file=sys.stderr)
            return 2

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    out = Path(args.out)
    started = time.monotonic()
    if args.replay is not None:
        seeds, deadline, group = iter([args.replay]), None, 1
    elif args.seeds is not None:
        try:
            listed = [int(v) for v in args.seeds.split(",") if v.strip()]
        except ValueError:
            print(f"error: --seeds takes integers separated by commas, not {args.seeds!r}", file=sys.stderr)
            return 2
        seeds, deadline, group = iter(listed), None, args.group
    elif args.count is not None:
        base = args.seed * SEED_STRIDE
        seeds, deadline, group = iter(range(base, base + args.count)), None, args.group
    else:
        base = args.seed * SEED_STRIDE
        seeds, deadline, group = iter(range(base, base + SEED_STRIDE)), started + args.seconds, args.group
    log(f"fuzz campaign: {'replay of network ' + str(args.replay) if args.replay is not None else 'seed ' + str(args.seed)}, out {out}")
    results = campaign(seeds, out, deadline, group, args.timeout_cycles, log,
                       lambda rs: write_summary(out, summarize(rs, started, args)))
    s = summarize(results, started, args)
    write_summary(out, s)
    print(f"{s['networks']} networks in {s['seconds']} s: {s['mismatches']} with mismatches, {s['hangs']} hangs, "
          f"{s['failures']} failing; cycle model exact on {s['cycle_model']['exact']}/{s['cycle_model']['timed']}; "
          f"summary in {out / 'summary.md'}")
    for f in s["failing"]:
        print(f"  seed {f['seed']}: {'; '.join(f['problems'])}\n    replay: {f['replay']}")
    return 0 if s["failures"] == 0 and s["networks"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
