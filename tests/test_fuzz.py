"""Randomized differential testing: properties of the random network generator, of every
packer/unpacker pair on random networks, and a small fixed-seed slice of the fuzz campaign
(``python -m hdlgen.fuzz_campaign``) through Verilator."""

import json
from collections import Counter

import numpy as np
import pytest

from hdlgen.fold import check, plan, predict
from hdlgen.fuzz import random_network, random_resnet, random_spec, resnet_spec, spec_graph
from hdlgen.golden import classify
from hdlgen.ir import BIPOLAR, DType, Graph, sint, uint
from hdlgen.engines.mvau import hw_accumulator, pack_mvau, unpack_mvau
from hdlgen.pack import decode, encode, join_words, read_mem, split_words, write_mem
from hdlgen.rtl import pack_all

SEEDS = range(60)


def test_generator_covers_the_layer_kinds():
    seen = {"kinds": set(), "bits": set(), "k": set(), "stride": set(), "pad": set(), "pool": set(),
            "levels": set(), "pe1": 0, "pe_full": 0, "simd1": 0, "simd_full": 0, "odd": 0}
    for s in range(150):
        spec, g, fo = random_network(s)
        p = plan(g)
        check(p, fo)
        seen["kinds"].add(spec["kind"])
        seen["bits"].add(spec["in_bits"])
        for m, k, st, pad, pool, pst, lv in spec.get("convs", ()):
            seen["k"].add(k), seen["stride"].add(st), seen["pad"].add(pad), seen["pool"].add((pool, pst))
            seen["levels"].add(lv)
        for e in p.mvaus:
            f = fo[e.name]
            seen["pe1"] += f.pe == 1
            seen["pe_full"] += f.pe == e.n_out
            seen["simd1"] += f.simd == 1
            seen["simd_full"] += f.simd == e.n_in
            seen["odd"] += e.n_out % 2 == 1 and e.n_out > 2
    assert seen["kinds"] == {"fc", "cnn", "resnet"}
    assert seen["bits"] == set(range(1, 9))
    assert {1, 2, 3} <= seen["k"] and seen["stride"] == {1, 2} and {0, 1, 2} <= seen["pad"]
    assert {(0, 0), (2, 2), (3, 3)} <= seen["pool"] and any(p != s for p, s in seen["pool"])
    assert seen["levels"] >= {1, 2, 3}
    assert min(seen["pe1"], seen["pe_full"], seen["simd1"], seen["simd_full"], seen["odd"]) >= 20


def test_network_follows_from_its_seed():
    a, b = random_network(12345), random_network(12345)
    assert a[0] == b[0] and a[2] == b[2] and a[1].to_json() == b[1].to_json()
    x = np.random.default_rng(0).integers(0, a[1].input_type.dtype.max + 1, (4,) + a[1].input_type.shape)
    assert np.array_equal(classify(a[1], x.astype(np.uint8)), classify(b[1], x.astype(np.uint8)))
    assert random_network(12346)[1].to_json() != a[1].to_json()


@pytest.mark.parametrize("seed", SEEDS)
def test_export_round_trip(seed, tmp_path):
    """IR export (JSON + .npz) and load give the same graph and the same golden outputs."""
    spec, g, fo = random_network(seed)
    g.save(tmp_path / "g")
    back = Graph.load(tmp_path / "g.json")
    assert back.to_json() == g.to_json()
    x = np.random.default_rng(seed).integers(0, g.input_type.dtype.max + 1, (6,) + g.input_type.shape).astype(np.uint8)
    assert np.array_equal(classify(back, x), classify(g, x))
    g.save(tmp_path / "h")
    assert (tmp_path / "g.npz").read_bytes() == (tmp_path / "h.npz").read_bytes()


@pytest.mark.parametrize("seed", SEEDS)
def test_mvau_pack_unpack_on_random_networks(seed):
    """Every layer's memory image unpacks to its weights, and its thresholds decide every
    reachable accumulator value the same way; packing again gives the same words."""
    spec, g, fo = random_network(seed)
    p = plan(g)
    images = pack_all(g, p, fo)
    for e in p.mvaus:
        f, img = fo[e.name], images[e.name]
        w = g.node(e.name).params["weight"]
        w = w.reshape(w.shape[0], -1)
        t = g.node(e.threshold).params["thresholds"] if e.threshold else None
        assert len(img.weight_words) == (e.n_out // f.pe) * (e.n_in // f.simd)
        assert all(0 <= word < 1 << img.weight_width for word in img.weight_words)
        w2, t2 = unpack_mvau(e, f, img)
        assert np.array_equal(w2, w)
        if t is None:
            assert t2 is None and img.thr_words == []
            continue
        v = np.arange(e.acc_dtype.min, e.acc_dtype.max + 1)
        if hw_accumulator(e).popcount:
            v = v[(v + e.n_in) % 2 == 0]
        levels = lambda th: (v[None, :, None] >= th[:, None, :]).sum(-1)  # noqa: E731
        assert np.array_equal(levels(t), levels(t2))
        assert pack_mvau(e, f, w2, t2) == img


@pytest.mark.parametrize("seed", range(20))
def test_encode_join_mem_round_trips(seed, tmp_path):
    rng = np.random.default_rng(seed)
    kind = ["bipolar", "uint", "int"][seed % 3]
    bits = 1 if kind == "bipolar" else int(rng.integers(1, 20))
    dtype = BIPOLAR if kind == "bipolar" else (uint(bits) if kind == "uint" else sint(max(bits, 2)))
    words, elements = int(rng.integers(1, 9)), int(rng.integers(1, 40))
    v = (rng.choice([-1, 1], (words, elements)) if kind == "bipolar"
         else rng.integers(dtype.min, dtype.max + 1, (words, elements)))
    v[0, 0] = dtype.min
    v[-1, -1] = dtype.max
    codes = encode(v, dtype)
    assert np.array_equal(decode(codes, dtype), v)
    packed = join_words(codes, dtype.bits)
    assert np.array_equal(split_words(packed, elements, dtype.bits), codes)
    width = elements * dtype.bits
    write_mem(tmp_path / "m.mem", packed, width)
    assert read_mem(tmp_path / "m.mem", width) == packed
    with pytest.raises(ValueError):
        encode([dtype.max + 1], dtype)


def _convolutions(spec) -> int:
    if spec["kind"] != "resnet":
        return len(spec["convs"])
    return 1 + sum(2 + b["projection"] for stage in spec["stages"] for b in stage)


def test_spec_graph_respects_the_spec():
    rng = np.random.default_rng(3)
    for _ in range(40):
        spec = random_spec(rng)
        g = spec_graph(spec, rng)
        assert g.input_type.shape == tuple(spec["shape"]) and g.input_type.dtype == DType("uint", spec["in_bits"])
        assert sum(n.op == "conv2d" for n in g.nodes) == _convolutions(spec)
        assert sum(n.op == "dense" for n in g.nodes) == len(spec["hidden"]) + 1
        assert g.output_type.shape == (1,) and g.nodes[-2].type.shape == (spec["classes"],)


def test_generator_covers_residual_networks():
    """Residual networks of 1 to 3 stages of 1 to 3 blocks: identity and projection shortcuts
    (strided or not), 1x1 and 3x3 convolutions, multi-level inner activations; planned into
    forks, delay FIFOs, threshold selects, decimators and a global sum; cheap to simulate, and
    their class differs between random images in most of them."""
    blocks, stages, kinds, varied, n = Counter(), set(), Counter(), 0, 0
    for s in range(300):
        spec, g, fo = random_network(s)
        if spec["kind"] != "resnet":
            continue
        n += 1
        p = plan(g)
        kinds.update({e.kind for e in p.engines})
        stages.update(len(st) for st in spec["stages"])
        blocks.update((b["projection"], b["stride"], b["levels"] > 1, *b["kernels"])
                      for st in spec["stages"] for b in st)
        assert predict(p, fo)["cycles_per_image"] <= 2500
        x = np.random.default_rng(s).integers(0, g.input_type.dtype.max + 1, (12,) + g.input_type.shape)
        varied += len(set(classify(g, x.astype(np.uint8)).tolist())) > 1
    assert n >= 40 and stages == {1, 2, 3}
    assert {"fork", "delay", "select", "decimate", "globalsum"} <= {k for k, c in kinds.items() if c >= 10}
    assert {(False, 1), (True, 1), (True, 2)} <= {b[:2] for b in blocks}
    assert any(b[2] for b in blocks) and {b[3] for b in blocks} == {b[4] for b in blocks} == {1, 3}
    assert varied >= 0.6 * n


def test_random_resnet_is_a_residual_spec():
    g = random_resnet(np.random.default_rng(0), shape=(8, 8, 3), widths=(4, 8), classes=3)
    spec = resnet_spec((8, 8, 3), (4, 8), 2, 3)
    assert [n.name for n in g.nodes] == [n.name for n in spec_graph(spec, np.random.default_rng(0)).nodes]
    assert [[b["projection"] for b in st] for st in spec["stages"]] == [[False, False], [True, False]]
    assert sum(n.op == "select_threshold" for n in g.nodes) == 4 and g.node("s1b0_sc").attrs["stride"] == 2


# Five networks with one input lane, verilated together: convolutions with padding, stride 2,
# pooling 2/2 and 3/3, multi-level activations, 1-bit to 7-bit inputs, a network with no hidden
# layer, and a residual network of three stages (identity shortcuts, projections at stride 1 and
# 2, decimators, global pooling).
SLICE = [108, 120, 127, 142, 153]


@pytest.mark.verilator
def test_fuzz_slice_through_verilator(tmp_path):
    from hdlgen.fuzz_campaign import main

    out = tmp_path / "fuzz"
    seeds = ",".join(map(str, SLICE))
    rc = main(["--seeds", seeds, "--out", str(out), "--quiet"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["networks"] == len(SLICE)
    assert summary["failing"] == [], summary["failing"]
    assert rc == 0
    assert summary["mismatches"] == 0 and summary["hangs"] == 0
    assert summary["cycle_model"]["exact"] == len(SLICE)
    assert set(summary["coverage"]["kinds"]) == {"fc", "cnn", "resnet"}
    assert {"fork", "delay", "select", "decimate", "globalsum"} <= set(summary["coverage"]["engine_kinds"])
    assert "select_threshold -> select" in summary["coverage"]["op_engines"]
    assert "Shapes covered" in (out / "summary.md").read_text()


def test_cycle_model_bottleneck_is_the_slowest_stage():
    for s in range(100):
        spec, g, fo = random_network(s)
        pred = predict(plan(g), fo)
        assert pred["cycles_per_image"] == max(st["cycles"] for st in pred["stages"]) <= 2500
