"""Binarized layers, BatchNorm folding and export: the PyTorch integer path and the golden IR
must agree on every hidden activation and every class decision."""

import numpy as np
import pytest
import torch
from torch import nn

from hdlgen.errors import HdlgenError
from hdlgen.golden import classify, run
from hdlgen.ir import Graph, sint
from hdlgen.nn.export import export
from hdlgen.nn.layers import (BinaryDense, BinaryNet, Flatten, InputQuant, bn_sign_thresholds, sign_ste)
from hdlgen.nn.recipes import build_model
from nn_helpers import int64, integer_and_float, random_images


def small_net(shape=(6, 5, 2), hidden=(40, 30), classes=7, seed=0):
    torch.manual_seed(seed)
    widths = [int(np.prod(shape))] + list(hidden)
    layers = [InputQuant(shape), Flatten()]
    layers += [BinaryDense(a, b) for a, b in zip(widths[:-1], widths[1:])]
    layers.append(BinaryDense(widths[-1], classes, activation=False))
    return BinaryNet(*layers)


# -- sign with straight-through estimator -----------------------------------------------------

def test_sign_forward_and_ste_gradient():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    g = torch.arange(1.0, 8.0)
    y.backward(g)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_binary_linear_gradient_reaches_latent_weights():
    layer = BinaryDense(4, 3, activation=False)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[0.5, -0.2, 2.0, 0.0]] * 3))
    layer.input_dtype, layer.input_scale = sint(2), 1
    x = torch.ones(2, 4)
    layer.train()
    layer(x).sum().backward()
    grad = layer.linear.weight.grad
    assert grad[:, 2].abs().sum() == 0  # |w| > 1: no gradient
    assert (grad[:, [0, 1, 3]] != 0).all()
    assert layer.integer_weight().tolist() == [[1, -1, 1, 1]] * 3


# -- BatchNorm folding ------------------------------------------------------------------------

def test_thresholds_by_gamma_sign():
    acc = sint(8)  # -128 .. 127
    gamma = np.array([2.0, -2.0, 0.0, 0.0, 1.0, 1.0, -1.0])
    beta = np.array([1.0, 1.0, 0.0, -0.5, 0.0, 0.0, 0.0])
    mean = np.array([10.0, 10.0, 3.0, 3.0, 1e9, -1e9, 1e9])
    var = np.full(7, 4.0 - 1e-5)
    t, neg = bn_sign_thresholds(gamma, beta, mean, var, 1e-5, 1, acc)
    # gamma=2: A >= ceil(10 - 1*2/2) = 9; gamma=-2: A <= 10 + 1 = 11 -> -A >= -11
    assert t.tolist()[:2] == [9, -11]
    assert neg.tolist() == [False, True, False, False, False, False, True]
    assert t[2] == acc.min and t[3] == acc.max + 1  # constants: +1 for beta >= 0, -1 otherwise
    assert t[4] == acc.max + 1 and t[5] == acc.min and t[6] == acc.min  # clamped


def test_thresholds_match_float_batchnorm_sign():
    rng = np.random.default_rng(1)
    c = 64
    gamma = rng.normal(size=c) * rng.choice([0.0, 1.0], size=c, p=[0.1, 0.9])
    beta, mean = rng.normal(size=c), rng.normal(size=c) * 20
    var = rng.uniform(0.1, 30, size=c)
    for scale in (1, 255):
        acc = sint(16)
        t, neg = bn_sign_thresholds(gamma, beta, mean, var, 1e-5, scale, acc)
        a = np.arange(-3000, 3001, dtype=np.float64)[:, None]
        y = gamma * (a / scale - mean) / np.sqrt(var + 1e-5) + beta
        want = y >= 0
        got = np.where(neg, -a, a) >= t
        near = np.abs(y) < 1e-9
        assert np.array_equal(got[~near], want[~near])


def test_thresholds_reject_non_finite():
    with pytest.raises(HdlgenError, match="non-finite"):
        bn_sign_thresholds([1.0], [np.nan], [0.0], [1.0], 1e-5, 1, sint(8))


# -- golden IR == PyTorch integer path ----------------------------------------------------------

def randomize_bn(net, x, seed):
    """Random BatchNorm parameters (positive, negative and zero gamma), with running means put
    on the accumulators of image 3 so that many accumulators sit exactly on their threshold."""
    rng = np.random.default_rng(seed)
    net.eval()
    h = torch.from_numpy(x)
    h = net.layers[1](net.layers[0](h))
    for m in net.dense_layers():
        if m.activation:
            c = m.out_features
            gamma = rng.normal(size=c) * rng.choice([-1.0, 1.0], size=c)
            gamma[rng.random(c) < 0.15] = 0.0
            beta = rng.normal(size=c) * 2
            acc = (h.double() @ torch.from_numpy(m.integer_weight()).double().t())[3].numpy()
            mean = rng.normal(size=c) * 5
            hit = rng.random(c) < 0.5
            mean[hit] = acc[hit] / m.input_scale
            beta[hit & (rng.random(c) < 0.7)] = 0.0
            with torch.no_grad():
                m.bn.weight.copy_(torch.from_numpy(gamma))
                m.bn.bias.copy_(torch.from_numpy(beta))
                m.bn.running_mean.copy_(torch.from_numpy(mean))
                m.bn.running_var.copy_(torch.from_numpy(rng.uniform(0.01, 40, size=c)))
        h = m(h)


def check_exact(net, graph, x):
    acts = net.activations(torch.from_numpy(x))
    golden = run(graph, x)
    dense = net.dense_layers()
    hits = 0
    for i, (m, a) in enumerate(zip(dense, acts)):
        if m.activation:
            assert np.array_equal(golden[f"act{i}"], int64(a)), f"act{i}"
            t = graph.node(f"act{i}").params["thresholds"][:, 0]
            hits += int((golden[f"fc{i}"] == t).sum())
        else:
            assert np.array_equal(golden[f"fc{i}"], int64(a)), f"fc{i}"
    want = np.argmax(acts[-1].numpy(), axis=1)
    assert np.array_equal(golden["cls"][:, 0], want)
    assert np.array_equal(classify(graph, x), want)
    return hits


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_golden_reproduces_pytorch_integer_path(seed):
    net = small_net(seed=seed)
    x = random_images(64, (6, 5, 2), seed)
    randomize_bn(net, x, seed)
    graph = export(net, "small", {})
    hits = check_exact(net, graph, x)
    assert hits > 20  # inputs that land exactly on thresholds were exercised
    gammas = np.concatenate([m.bn.weight.detach().numpy() for m in net.dense_layers() if m.activation])
    assert (gammas < 0).any() and (gammas == 0).any()


def test_argmax_ties_pick_lowest_index():
    net = small_net(seed=3)
    x = random_images(32, (6, 5, 2), 3)
    randomize_bn(net, x, 3)
    out = net.dense_layers()[-1].linear.weight
    with torch.no_grad():
        out[1] = out[0]
        out[2] = out[0]
        out[4] = out[5]
    graph = export(net, "ties", {})
    check_exact(net, graph, x)
    scores = net(torch.from_numpy(x)).numpy()
    assert (scores[:, 0] == scores[:, 2]).all()
    assert not (classify(graph, x) == 2).any()


def test_float_reference_agrees_with_integer_path():
    net = small_net(seed=4)
    x = random_images(128, (6, 5, 2), 4)
    ints, floats = integer_and_float(net, x, lambda n, b: n.activations(b))
    assert not net.float_reference
    for a, b in zip(ints[:-1], floats[:-1]):
        assert a.dtype == torch.float64 and b.dtype == torch.float32
        assert (a.float() == b).float().mean() > 0.995
    assert (ints[-1].argmax(1) == floats[-1].argmax(1)).float().mean() > 0.95


def test_integer_path_rejects_non_pixel_input():
    net = small_net().eval()
    with pytest.raises(HdlgenError, match="0 .. 255"):
        net(torch.full((1, 6, 5, 2), 0.5))
    with pytest.raises(HdlgenError, match="shape"):
        net(torch.zeros(1, 5, 6, 2))


# -- export ----------------------------------------------------------------------------------

def test_export_structure_and_bipolar_weights():
    net, _ = build_model("mlp", {"hidden": [32, 16]})
    graph = export(net, "mlp-small", {"dataset": "fashion-mnist", "classes": list("abcdefghij")})
    assert [(n.name, n.op) for n in graph.nodes] == [
        ("flatten", "flatten"), ("fc0", "dense"), ("act0", "threshold"), ("fc1", "dense"),
        ("act1", "threshold"), ("fc2", "dense"), ("cls", "argmax")]
    assert graph.input_name == "image" and str(graph.input_type) == "uint8[28x28x1]"
    for n in graph.nodes:
        if n.op == "dense":
            w = n.params["weight"]
            assert w.dtype == np.int8 and set(np.unique(w)) <= {-1, 1}
            assert n.attrs["weight_dtype"] == "bipolar"
        if n.op == "threshold":
            assert n.attrs["out"] == "bipolar" and n.params["thresholds"].shape[1] == 1
    assert graph.meta["dataset"] == "fashion-mnist" and graph.meta["classes"][0] == "a"
    assert "255" in graph.meta["input_scaling"]


def test_negative_gamma_negates_weight_rows():
    net = small_net(seed=5)
    layer = net.dense_layers()[0]
    with torch.no_grad():
        layer.bn.weight.fill_(1.0)
        layer.bn.weight[:3] = -1.0
    graph = export(net.eval(), "neg", {})
    w = graph.node("fc0").params["weight"]
    assert np.array_equal(w[:3], -layer.integer_weight()[:3])
    assert np.array_equal(w[3:], layer.integer_weight()[3:])


def test_export_rejects_unknown_module():
    layers = list(small_net().layers)
    net = BinaryNet(*layers[:3], nn.ReLU(), *layers[3:])
    with pytest.raises(HdlgenError, match=r"'layers\.3' of type ReLU.*BinaryDense"):
        export(net, "bad", {})
    with pytest.raises(HdlgenError, match="must be a BinaryNet"):
        export(nn.Linear(3, 3), "bad", {})


def test_export_rejects_bad_meta_and_structure():
    with pytest.raises(HdlgenError, match="JSON"):
        export(small_net(), "bad", {"x": object()})
    with pytest.raises(HdlgenError, match="activation=False"):
        BinaryNet(InputQuant((2, 2, 1)), Flatten(), BinaryDense(4, 3))
    with pytest.raises(HdlgenError, match="Flatten"):
        export(BinaryNet(InputQuant((1, 1, 4)), BinaryDense(4, 3, activation=False)), "noflat", {})


def test_ir_save_load_round_trip(tmp_path):
    net = small_net(seed=6)
    x = random_images(40, (6, 5, 2), 6)
    randomize_bn(net, x, 6)
    graph = export(net, "rt", {"dataset": "mnist", "classes": [str(i) for i in range(7)]})
    graph.save(tmp_path / "rt")
    back = Graph.load(tmp_path / "rt.json")
    assert back.meta == graph.meta
    assert [n.type for n in back.nodes] == [n.type for n in graph.nodes]
    for a, b in zip(graph.nodes, back.nodes):
        for k in a.params:
            assert np.array_equal(a.params[k], b.params[k])
    assert np.array_equal(classify(back, x), classify(graph, x))
    check_exact(net, back, x)
