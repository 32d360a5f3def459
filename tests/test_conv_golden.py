"""conv2d and maxpool in the IR and the golden model against direct loops; plan and folding of CNNs."""

import numpy as np
import pytest

from hdlgen.errors import HdlgenError
from hdlgen.fold import SWU, Folding, LayerFold, MaxPool, auto_fold, check, plan, predict
from hdlgen.fuzz import random_folding, random_graph, random_images
from hdlgen.golden import run
from hdlgen.ir import BIPOLAR, Graph, TensorType, accumulator, uint


def conv_loops(x, w, k, s, p, pv):
    h, wd, c = x.shape
    m = w.shape[0]
    oh, ow = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    out = np.zeros((oh, ow, m), np.int64)
    for y in range(oh):
        for xx in range(ow):
            for o in range(m):
                acc = 0
                for ky in range(k):
                    for kx in range(k):
                        iy, ix = s * y + ky - p, s * xx + kx - p
                        for ch in range(c):
                            v = x[iy, ix, ch] if 0 <= iy < h and 0 <= ix < wd else pv
                            acc += int(w[o, ky, kx, ch]) * int(v)
                out[y, xx, o] = acc
    return out


def pool_loops(x, k, s):
    h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return np.array([[[max(x[s * y + ky, s * xx + kx, ch] for ky in range(k) for kx in range(k))
                       for ch in range(c)] for xx in range(ow)] for y in range(oh)])


@pytest.mark.parametrize("dtype,pv", [(uint(8), 0), (uint(3), 5), (BIPOLAR, -1), (BIPOLAR, 1)])
@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (2, 2, 0), (1, 1, 0), (3, 2, 2)])
def test_conv2d_against_loops(dtype, pv, k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    h, w, c, m = 6, 5, 2, 3
    g = Graph("c", "image", TensorType((h, w, c), dtype))
    wt = rng.choice(np.array([-1, 1], np.int8), (m, k, k, c))
    g.add("conv", "conv2d", "image", {"kernel": k, "stride": s, "pad": p, "pad_value": pv}, {"weight": wt})
    assert g.nodes[-1].type.dtype == accumulator(k * k * c, dtype, BIPOLAR)
    x = (rng.choice([-1, 1], (3, h, w, c)) if dtype == BIPOLAR else rng.integers(0, dtype.max + 1, (3, h, w, c)))
    out = run(g, x)["conv"]
    for b in range(len(x)):
        assert out[b].tolist() == conv_loops(x[b], wt, k, s, p, pv).tolist()


@pytest.mark.parametrize("dtype", [uint(4), BIPOLAR])
@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_maxpool_against_loops(dtype, k, s):
    rng = np.random.default_rng(k + s)
    x = rng.choice([-1, 1], (2, 7, 6, 3)) if dtype == BIPOLAR else rng.integers(0, 16, (2, 7, 6, 3))
    g = Graph("p", "image", TensorType((7, 6, 3), dtype))
    g.add("pool", "maxpool", "image", {"kernel": k, "stride": s})
    assert g.nodes[-1].type.dtype == dtype
    out = run(g, x)["pool"]
    for b in range(len(x)):
        assert out[b].tolist() == pool_loops(x[b], k, s).tolist()


def test_conv_ir_errors_name_the_node():
    g = Graph("c", "image", TensorType((5, 5, 2), BIPOLAR))
    w = np.ones((3, 3, 3, 2), np.int8)
    with pytest.raises(ValueError, match=r"'cv' \(conv2d\): pad_value 0 is not a bipolar value"):
        g.add("cv", "conv2d", "image", {"kernel": 3, "pad": 1, "pad_value": 0}, {"weight": w})
    with pytest.raises(ValueError, match="'cv'.*weight has a 3x3 kernel, attribute kernel is 2"):
        g.add("cv", "conv2d", "image", {"kernel": 2}, {"weight": w})
    with pytest.raises(ValueError, match="'cv'.*weight has 1 input channels, input has 2"):
        g.add("cv", "conv2d", "image", {"kernel": 3}, {"weight": w[..., :1]})
    with pytest.raises(ValueError, match="'cv'.*pad 3 must be smaller than the kernel 3"):
        g.add("cv", "conv2d", "image", {"kernel": 3, "pad": 3}, {"weight": w})
    with pytest.raises(ValueError, match="'cv'.*attribute 'stride' must be an integer >= 1, not 0"):
        g.add("cv", "conv2d", "image", {"kernel": 3, "stride": 0}, {"weight": w})
    with pytest.raises(ValueError, match="'cv'.*weights must all be bipolar"):
        g.add("cv", "conv2d", "image", {"kernel": 3}, {"weight": w * 0})
    with pytest.raises(ValueError, match="'mp'.*kernel 6 does not fit the 5x5 input"):
        g.add("mp", "maxpool", "image", {"kernel": 6})
    flat = g.add("flat", "flatten", "image")
    with pytest.raises(ValueError, match="'mp'.*must be an image"):
        g.add("mp", "maxpool", flat, {"kernel": 2})


def test_cnn_graph_round_trip_and_not_degenerate(tmp_path):
    rng = np.random.default_rng(3)
    g = random_graph(rng, shape=(8, 8, 2), hidden=(16,), classes=5, convs=[(8, 3, 1, 1, 2), (8, 3, 1, 1, 0)])
    g.save(tmp_path / "m")
    g2 = Graph.load(tmp_path / "m")
    x = random_images(rng, g, 60)
    a, b = run(g, x), run(g2, x)
    assert a["cls"].tolist() == b["cls"].tolist()
    for name in ("cact0", "cact1", "act0"):
        assert 0.1 < (a[name] > 0).mean() < 0.9, name
    assert len(set(a["cls"][:, 0].tolist())) >= 3


def test_plan_and_cycle_model_of_a_cnn():
    g = random_graph(np.random.default_rng(0), shape=(6, 6, 2), hidden=(8,), classes=4,
                     convs=[(4, 3, 1, 1, 2), (6, 2, 1, 0, 0)])
    p = plan(g)
    assert [e.kind for e in p.engines] == ["swu", "mvau", "maxpool", "swu", "mvau", "mvau", "mvau", "argmax"]
    swu, conv0 = p.engines[0], p.engines[1]
    assert isinstance(swu, SWU) and swu.name == "conv0_swu" and swu.pad_code == 0
    assert (conv0.n_in, conv0.n_out, conv0.pixels, conv0.threshold) == (18, 4, 36, "cact0")
    assert isinstance(p.engines[2], MaxPool) and p.engines[2].window.out_beats == 36
    assert p.engines[4].pixels == 4 and p.engines[4].n_in == 2 * 2 * 4
    f = Folding(4, {"conv0": LayerFold(2, 6), "conv1": LayerFold(3, 4), "fc0": LayerFold(2, 4),
                    "fcout": LayerFold(4, 8)})
    check(p, f)
    cycles = {s["name"]: s["cycles"] for s in predict(p, f)["stages"]}
    assert cycles == {"input": 18, "conv0_swu": 36 * 9, "conv0": 36 * 2 * 3, "pool0": 36, "conv1_swu": 16,
                      "conv1": 4 * 2 * 4, "fc0": 4 * 6, "fcout": 1, "cls": 1}
    with pytest.raises(HdlgenError, match=r"layer conv1: SIMD 5 does not divide its 16 inputs"):
        check(p, Folding(4, {**f.layers, "conv1": LayerFold(3, 5)}))
    with pytest.raises(HdlgenError, match=r"layer conv0: PE 3 does not divide its 4 outputs"):
        check(p, Folding(4, {**f.layers, "conv0": LayerFold(3, 6)}))
    for target in (1, 400, 5000):
        a = auto_fold(p, target)
        check(p, a)
        assert predict(p, a)["cycles_per_image"] <= max(target, 324)
    check(p, random_folding(np.random.default_rng(1), g))


def test_plan_rejects_conv_without_threshold():
    g = Graph("c", "image", TensorType((4, 4, 1), uint(8)))
    g.add("cv", "conv2d", "image", {"kernel": 3}, {"weight": np.ones((2, 3, 3, 1), np.int8)})
    g.add("flat", "flatten", "cv")
    g.add("fc", "dense", "flat", {}, {"weight": np.ones((3, 8), np.int8)})
    g.add("cls", "argmax", "fc")
    with pytest.raises(HdlgenError, match=r"node 'cv' \(conv2d\) must be followed by a threshold"):
        plan(g)
