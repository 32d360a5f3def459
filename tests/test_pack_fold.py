"""Packers against unpackers, the memory file format, folding checks and the cycle model."""

import numpy as np
import pytest

from hdlgen.engines import divisors
from hdlgen.engines.mvau import MVAU, hw_accumulator, pack_mvau, unpack_mvau
from hdlgen.errors import HdlgenError
from hdlgen.fold import Folding, LayerFold, auto_fold, check, plan, predict
from hdlgen.fuzz import random_folding, random_graph
from hdlgen.ir import BIPOLAR, DType, sint, uint
from hdlgen.pack import decode, encode, join_words, read_mem, split_words, write_mem


@pytest.mark.parametrize("dtype", [BIPOLAR, uint(1), uint(8), sint(2), sint(13)])
def test_encode_decode_round_trip(dtype):
    rng = np.random.default_rng(dtype.bits)
    v = rng.choice([-1, 1], 50) if dtype.kind == "bipolar" else rng.integers(dtype.min, dtype.max + 1, 50)
    codes = encode(v, dtype)
    assert codes.max() < 2 ** dtype.bits
    assert decode(codes, dtype).tolist() == v.tolist()
    words = join_words(codes.reshape(10, 5), dtype.bits)
    assert split_words(words, 5, dtype.bits).ravel().tolist() == codes.tolist()


def test_word_lane_order():
    assert join_words(np.array([[1, 2, 3]]), 4) == [0x321]
    assert encode([-1, 1], BIPOLAR).tolist() == [0, 1]
    assert encode([-1], sint(4)).tolist() == [15]


def test_mem_file_round_trip(tmp_path):
    words = [0, 1, 0xABC, 2 ** 70 - 1]
    write_mem(tmp_path / "m.mem", words, 70)
    assert (tmp_path / "m.mem").read_text().splitlines()[2] == "0" * 15 + "abc"
    assert read_mem(tmp_path / "m.mem", 70) == words
    with pytest.raises(ValueError):
        write_mem(tmp_path / "x.mem", [16], 4)


@pytest.mark.parametrize("seed", range(8))
def test_mvau_pack_unpack(seed):
    rng = np.random.default_rng(seed)
    g = random_graph(rng, shape=(3, 2, 2), hidden=(int(rng.choice([6, 9, 12])), 4), classes=3)
    p = plan(g)
    fo = random_folding(rng, g)
    for e in p.mvaus:
        f = fo[e.name]
        w = g.node(e.name).params["weight"]
        t = g.node(e.threshold).params["thresholds"] if e.threshold else None
        img = pack_mvau(e, f, w, t)
        assert len(img.weight_words) == (e.n_out // f.pe) * (e.n_in // f.simd)
        w2, t2 = unpack_mvau(e, f, img)
        assert np.array_equal(w2, w)
        if t is None:
            assert t2 is None
            continue
        # thresholds in the popcount domain keep their meaning: same decision for every acc value
        acc = e.acc_dtype
        values = np.arange(acc.min, acc.max + 1)
        values = values[(values + e.n_in) % 2 == 0] if hw_accumulator(e).popcount else values
        assert np.array_equal(values[None, :] >= t, values[None, :] >= t2)
        assert pack_mvau(e, f, w2, t2) == img


def test_popcount_threshold_domain():
    e = MVAU("fc", 8, 1, BIPOLAR, BIPOLAR, DType.for_range(-8, 8), BIPOLAR, "t")
    acc = hw_accumulator(e)
    assert acc.popcount and acc.dtype == uint(4)
    # acc = 2p - 8 >= T  <=>  p >= ceil((T + 8) / 2)
    assert acc.from_ir(np.array([-8, -7, 0, 1, 8, 9]), 8).tolist() == [0, 1, 4, 5, 8, 9]


def test_folding_checks_name_the_layer():
    g = random_graph(np.random.default_rng(0), shape=(4, 3, 1), hidden=(12, 8), classes=5)
    p = plan(g)
    good = Folding(2, {"fc0": LayerFold(3, 4), "fc1": LayerFold(2, 6), "fcout": LayerFold(5, 8)})
    check(p, good)
    with pytest.raises(HdlgenError, match=r"layer fc1: PE 5 does not divide its 8 outputs \(allowed: 1, 2, 4, 8\)"):
        check(p, Folding(2, {**good.layers, "fc1": LayerFold(5, 6)}))
    with pytest.raises(HdlgenError, match="SIMD 5 does not divide"):
        check(p, Folding(2, {**good.layers, "fc0": LayerFold(3, 5)}))
    with pytest.raises(HdlgenError, match="input lanes 5"):
        check(p, Folding(5, good.layers))
    with pytest.raises(HdlgenError, match="no entry for layer 'fcout'"):
        check(p, Folding(2, {"fc0": LayerFold(3, 4), "fc1": LayerFold(2, 6)}))
    with pytest.raises(HdlgenError, match="does not have: fc9"):
        check(p, Folding(2, {**good.layers, "fc9": LayerFold(1, 1)}))


def test_folding_json_round_trip(tmp_path):
    f = Folding(4, {"fc0": LayerFold(2, 49)})
    assert Folding.from_json(f.to_json()) == f
    (tmp_path / "f.json").write_text("{not json")
    with pytest.raises(HdlgenError, match="not valid JSON"):
        Folding.load(tmp_path / "f.json")
    with pytest.raises(HdlgenError, match="expected"):
        Folding.from_json({"layers": {}})


def test_cycle_model_formula():
    g = random_graph(np.random.default_rng(0), shape=(4, 3, 1), hidden=(12, 8), classes=5)
    p = plan(g)
    f = Folding(2, {"fc0": LayerFold(3, 4), "fc1": LayerFold(2, 6), "fcout": LayerFold(5, 8)})
    pred = predict(p, f)
    cycles = {s["name"]: s["cycles"] for s in pred["stages"]}
    assert cycles == {"input": 6, "fc0": 4 * 3, "fc1": 4 * 2, "fcout": 1 * 1, "cls": 1}
    assert pred["cycles_per_image"] == 12 and pred["bottleneck"] == "fc0"


@pytest.mark.parametrize("target", [1, 7, 64, 1000])
def test_auto_fold_meets_target(target):
    g = random_graph(np.random.default_rng(1), shape=(6, 6, 1), hidden=(32, 16), classes=10)
    p = plan(g)
    f = auto_fold(p, target)
    check(p, f)
    assert predict(p, f)["cycles_per_image"] <= max(target, 1)
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
