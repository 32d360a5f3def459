"""The engine registry: every kind complete on both sides, its RTL component's latency equal to
its model side's depth, engine choice in the folding file, and the import rule."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amaranth.lib.data import ArrayLayout

from amaranth_tb import Source, flat, run_testbench
from hdlgen.engines import REGISTRY, EngineKind, NoKnobs, kind_of, register
from hdlgen.engines.mvau import MvauFold
from hdlgen.errors import HdlgenError
from hdlgen.fold import Folding, auto_fold, check, plan
from hdlgen.fold.timeline import delay_depths, lanes, output_names
from hdlgen.fuzz import random_graph, random_resnet
from hdlgen.rtl import pack_all
from hdlgen.rtl.built import Options, layout_of, lanes_signature
from hdlgen.rtl.components import COMPONENTS

ROOT = Path(__file__).resolve().parents[1]


def _designs():
    """(plan, folding, graph) covering every engine kind."""
    rng = np.random.default_rng(3)
    cnn = random_graph(rng, shape=(6, 6, 2), hidden=(8,), classes=4, convs=[(4, 3, 1, 1, 2), (3, 1, 2, 0, 0)])
    res = random_resnet(rng, shape=(8, 8, 3), widths=(4, 8), classes=3)
    for g in (cnn, res):
        p = plan(g)
        yield p, auto_fold(p, 64), g


def test_registry_has_every_kind_on_both_sides():
    assert set(REGISTRY) == set(COMPONENTS)
    seen = {e.kind for p, _, _ in _designs() for e in p.engines}
    assert seen == set(REGISTRY)


def test_unknown_kind_and_incomplete_kind_are_errors():
    with pytest.raises(HdlgenError, match=r"unknown engine 'shift' \(known: mvau, "):
        kind_of("shift")

    class Half(EngineKind):
        kind, Knobs, ops, paced, balances = "half", NoKnobs, ("dense",), False, False

        def cycles(self, spec, knobs, lanes_in):
            return 1

    with pytest.raises(TypeError, match="engine kind Half does not define validate, outputs, lanes_in, lanes_out, depth, .*, accepts, lower$"):
        register(Half)
    assert "half" not in REGISTRY


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # built to be inspected
def test_component_latency_is_the_model_depth():
    for p, fo, g in _designs():
        ln, images, sizes = lanes(p, fo), pack_all(g, p, fo), delay_depths(p, fo)
        streams = {"input": layout_of(lanes_signature(p.input_dtype.bits, fo.in_lanes).create())}
        for e in p.engines:
            kind, knobs = REGISTRY[e.kind], fo.knobs(e)
            ins = [ArrayLayout(streams[src].elem_shape, want) for src, want in zip(p.inputs[e.name], ln.inputs[e.name])]
            built = COMPONENTS[e.kind].from_engine(e, knobs, images.get(e.name), ins, Options(True, "shared", sizes))
            assert built.component.latency == kind.depth(e, knobs), e.name
            assert len(built.inputs) == len(p.inputs[e.name]) and len(built.outputs) == kind.outputs(e)
            for name, out in zip(output_names(e), built.outputs):
                assert layout_of(out).length == ln.streams[name]
                streams[name] = layout_of(out)


def test_folding_file_names_the_engine_and_old_files_load():
    g = random_graph(np.random.default_rng(0), shape=(4, 3, 1), hidden=(12, 8), classes=5)
    p = plan(g)
    fo = Folding(2, {"fc0": MvauFold(3, 4), "fc1": MvauFold(2, 6), "fcout": MvauFold(5, 8)})
    data = fo.to_json()
    assert data["layers"]["fc0"] == {"engine": "mvau", "pe": 3, "simd": 4}
    assert Folding.from_json(data) == fo
    old = {"in_lanes": 2, "layers": {k: {"pe": v.pe, "simd": v.simd} for k, v in fo.layers.items()}}
    assert Folding.from_json(old) == fo
    check(plan(g, fo.engines()), fo)
    assert p.choices["fc0"] == ("mvau", "the only engine for dense")
    assert plan(g, {"fc0": "mvau"}).choices["fc0"] == ("mvau", "named in the folding")
    with pytest.raises(HdlgenError, match="unknown engine 'shift'"):
        Folding.from_json({"in_lanes": 2, "layers": {"fc0": {"engine": "shift", "pe": 1}}})
    with pytest.raises(HdlgenError, match=r"layer fc0: expected the keys pe, simd, got pe"):
        Folding.from_json({"in_lanes": 2, "layers": {"fc0": {"engine": "mvau", "pe": 1}}})
    with pytest.raises(HdlgenError, match=r"layer fc0: no \"engine\" given and the keys depth fit no engine"):
        Folding.from_json({"in_lanes": 2, "layers": {"fc0": {"depth": 3}}})
    with pytest.raises(HdlgenError, match=r"layer fc0: simd must be an integer, not 'x'"):
        Folding.from_json({"in_lanes": 2, "layers": {"fc0": {"engine": "mvau", "pe": 1, "simd": "x"}}})
    with pytest.raises(HdlgenError, match=r"engine 'mvau' does not implement node 'cls' \(argmax\)"):
        plan(g, {"cls": "mvau"})


SIDE_FREE = "import sys, hdlgen.ir, hdlgen.golden, hdlgen.pack, hdlgen.engines, hdlgen.fold; " \
            "print(sorted(m for m in ('amaranth', 'torch') if m in sys.modules))"


def test_model_side_imports_neither_amaranth_nor_torch():
    r = subprocess.run([sys.executable, "-c", SIDE_FREE], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]"


# ir <- golden, pack <- engines (model side) <- fold <- rtl <- build; lower ranks never import higher.
RANKS = {"errors": 0, "ir": 1, "golden": 2, "pack": 2, "engines": 3, "fold": 4, "rtl": 5, "build": 6}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hdlgen"


def import_graph() -> dict:
    """Unit (a subpackage or top module of hdlgen) -> the units it imports, counting imports
    inside functions as well as at the top of a file."""
    edges = {}
    for path in (ROOT / "hdlgen").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module[:-len(".__init__")]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith("hdlgen.") and _unit(t) not in (_unit(module), "hdlgen"):
                    edges.setdefault(_unit(module), set()).add(_unit(t))
    return edges


def cycles(edges: dict) -> list:
    """Every unit that can reach itself, with a path back to it."""
    found = []
    for start in sorted(edges):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    found.append(path + [start])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return found


def test_layers_import_one_way():
    edges = import_graph()
    wrong = [(a, b) for a, bs in edges.items() for b in bs if a in RANKS and b in RANKS and RANKS[b] >= RANKS[a]]
    assert wrong == []


def test_no_package_cycles_outside_nn():
    edges = {a: bs - {"nn", "model"} for a, bs in import_graph().items() if a not in ("nn", "model")}
    assert cycles(edges) == []


def test_no_package_cycles():
    assert cycles(import_graph()) == []


def test_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}})[0] == ["a", "b", "c", "a"]


# Kinds whose model gives a bound on the last beat, not its time: a decimator's last kept
# pixel can come before the image's last pixel (the rows and columns a stride skips).
LAST_BEAT_BOUND = ("decimate",)
START = 2   # cycles after reset before the first input beat (a ROM reads its first word meanwhile)


def _measure(built, beats_in: int, n_out: int, max_cycles: int = 5000) -> list:
    """Cycles of the output beats of a component offered ``beats_in`` beats (random payloads)
    on every input from cycle ``START`` at full rate, its outputs always ready."""
    rng = np.random.default_rng(0)
    sources = [Source(port.valid, port.payload, rng.integers(0, 1 << min(len(flat(port.payload)), 62), beats_in).tolist(),
                      rng, 0.0) for port in built.inputs]
    times = []

    async def tb(ctx):
        for port in built.outputs:
            ctx.set(port.ready, 1)
        for cycle in range(max_cycles):
            if len(times) == n_out:
                break
            for source in sources:
                if cycle >= START:
                    source.drive(ctx)
            await ctx.delay(1e-9)
            for source, port in zip(sources, built.inputs):
                source.settle(ctx, port.ready)
            if ctx.get(built.outputs[0].valid):
                times.append(cycle)
            await ctx.tick()

    run_testbench(built.component, tb)
    return times


def test_component_timing_is_the_model_timeline():
    """Each engine alone, one image offered at full rate on every input, outputs always ready:
    its first and last output beat come when the model side's timeline says."""
    checked, wrong = set(), []
    for p, fo, g in _designs():
        ln, images, sizes = lanes(p, fo), pack_all(g, p, fo), delay_depths(p, fo)
        streams = {"input": layout_of(lanes_signature(p.input_dtype.bits, fo.in_lanes).create())}
        for e in p.engines:
            kind, knobs = REGISTRY[e.kind], fo.knobs(e)
            ins = [ArrayLayout(streams[src].elem_shape, want) for src, want in zip(p.inputs[e.name], ln.inputs[e.name])]
            built = COMPONENTS[e.kind].from_engine(e, knobs, images.get(e.name), ins, Options(False, "shared", sizes))
            for name, out in zip(output_names(e), built.outputs):
                streams[name] = layout_of(out)
            d = kind.describe(e, knobs, images.get(e.name), sizes)
            beats_in = int(np.prod(d["in_shape"])) // ln.inputs[e.name][0]
            beats_out = int(np.prod(d["out_shape"])) // kind.outputs(e) // layout_of(built.outputs[0]).length
            times = _measure(built, beats_in, beats_out)
            model = kind.timeline(e, knobs, [(START, START + beats_in - 1)] * len(built.inputs))
            late = e.kind in LAST_BEAT_BOUND and times[0] == model[0] and times[-1] <= model[1]
            if (times[0], times[-1]) != model and not late:
                wrong.append((e.name, (times[0], times[-1]), model))
            checked.add(e.kind)
    assert checked == set(REGISTRY)
    assert wrong == []
