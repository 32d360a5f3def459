"""Binarized convolution, max pooling and the CNV recipe: the PyTorch integer path and the golden
IR must agree on every hidden activation (every conv, pool and dense output) and every decision."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hdlgen.errors import HdlgenError
from hdlgen.golden import classify, run
from hdlgen.ir import BIPOLAR, uint
from hdlgen.nn.export import export
from hdlgen.nn.layers import (BinaryConv2d, BinaryDense, BinaryNet, Flatten, InputQuant, MaxPool,
                              bn_sign_thresholds)
from hdlgen.nn.recipes import build_model
from nn_helpers import int64, integer_and_float, random_images


def small_cnn(shape=(9, 8, 3), seed=0, pad_values=(1, -1), first_pad=1, stride=2, classes=5):
    """conv (uint8 input, padded with 0) -> conv stride 2 padded -> pool -> conv padded -> flatten ->
    dense -> dense output."""
    torch.manual_seed(seed)
    h, w, c = shape
    c1 = BinaryConv2d(c, 6, 3, 1, first_pad)
    c2 = BinaryConv2d(6, 8, 3, stride, 1, pad_value=pad_values[0])
    pool = MaxPool(2, 1)
    c3 = BinaryConv2d(8, 5, 2, 1, 1, pad_value=pad_values[1])
    layers = [InputQuant(shape), c1, c2, pool, c3, Flatten()]
    hh, ww = c1.output_size(h, w)
    hh, ww = c2.output_size(hh, ww)
    hh, ww = pool.output_size(hh, ww)
    hh, ww = c3.output_size(hh, ww)
    layers += [BinaryDense(hh * ww * 5, 12), BinaryDense(12, classes, activation=False)]
    return BinaryNet(*layers)


def _accumulators(m, h):
    """The layer's integer accumulators for input ``h`` (channels last), as float64."""
    if isinstance(m, BinaryConv2d):
        w = torch.from_numpy(m.integer_weight().transpose(0, 3, 1, 2).copy()).double()
        return m._conv(h.double(), w).permute(0, 2, 3, 1)
    return h.double() @ torch.from_numpy(m.integer_weight()).double().t()


def randomize_bn(net, x, seed):
    """Random BatchNorm parameters (positive, negative and zero gamma); the running means of half
    the channels sit on accumulators of image 3, so many accumulators equal their threshold."""
    rng = np.random.default_rng(seed)
    net.eval()
    h = torch.from_numpy(x)
    for m in net.layers:
        if isinstance(m, (BinaryConv2d, BinaryDense)) and getattr(m, "activation", True):
            acc = _accumulators(m, h)[3].reshape(-1, m.bn.num_features).numpy()
            c = m.bn.num_features
            gamma = rng.normal(size=c) * rng.choice([-1.0, 1.0], size=c)
            gamma[rng.random(c) < 0.15] = 0.0
            beta = rng.normal(size=c) * 2
            mean = rng.normal(size=c) * 5
            hit = rng.random(c) < 0.5
            picks = acc[rng.integers(0, len(acc), c), np.arange(c)]
            mean[hit] = picks[hit] / m.input_scale
            beta[hit & (rng.random(c) < 0.7)] = 0.0
            with torch.no_grad():
                m.bn.weight.copy_(torch.from_numpy(gamma))
                m.bn.bias.copy_(torch.from_numpy(beta))
                m.bn.running_mean.copy_(torch.from_numpy(mean))
                m.bn.running_var.copy_(torch.from_numpy(rng.uniform(0.01, 40, size=c)))
        h = m(h)


def ir_names(net):
    """IR tensor name of each hidden output, in the order of ``net.hidden_outputs``."""
    names, conv, pool, dense = [], 0, 0, 0
    for m in net.layers:
        if isinstance(m, BinaryConv2d):
            names.append((f"conv{conv}", f"conv{conv}_act"))
            conv += 1
        elif isinstance(m, MaxPool):
            names.append((None, f"pool{pool}"))
            pool += 1
        elif isinstance(m, BinaryDense):
            names.append((f"fc{dense}", f"act{dense}" if m.activation else f"fc{dense}"))
            dense += 1
    return names


def check_exact(net, graph, x):
    outs = net.hidden_outputs(torch.from_numpy(x))
    golden = run(graph, x)
    hits = 0
    for (m, a), (acc_name, out_name) in zip(outs, ir_names(net), strict=True):
        assert np.array_equal(golden[out_name], int64(a)), out_name
        if graph.node(out_name).op == "threshold":
            t = graph.node(out_name).params["thresholds"][:, 0]
            hits += int((golden[acc_name] == t).sum())
    want = np.argmax(outs[-1][1].numpy(), axis=1)
    assert np.array_equal(golden["cls"][:, 0], want)
    assert np.array_equal(classify(graph, x), want)
    return hits


@pytest.mark.parametrize("seed,pad_values,stride", [(0, (1, -1), 2), (1, (-1, 1), 2), (2, (1, 1), 1),
                                                    (3, (-1, -1), 2)])
def test_golden_reproduces_every_hidden_activation(seed, pad_values, stride):
    net = small_cnn(seed=seed, pad_values=pad_values, stride=stride)
    x = random_images(24, (9, 8, 3), seed)
    randomize_bn(net, x, seed)
    graph = export(net, "cnn", {})
    hits = check_exact(net, graph, x)
    assert hits > 10  # accumulators exactly on their thresholds were exercised
    gammas = np.concatenate([m.bn.weight.detach().numpy() for m in net.conv_layers()])
    assert (gammas < 0).any() and (gammas == 0).any()


def test_padding_values_reach_the_ir_and_matter():
    net = small_cnn(seed=7, pad_values=(1, -1))
    graph = export(net, "pads", {})
    convs = [n for n in graph.nodes if n.op == "conv2d"]
    assert [(n.attrs["pad"], n.attrs["pad_value"]) for n in convs] == [(1, 0), (1, 1), (1, -1)]
    assert [n.attrs["stride"] for n in convs] == [1, 2, 1]
    assert str(graph.types()["image"].dtype) == "uint8"
    # the padding value changes the accumulators at the border: the other value would differ
    x = random_images(4, (9, 8, 3), 7)
    g = run(graph, x)
    conv1 = graph.node("conv1")
    other = dict(conv1.attrs, pad_value=-1)
    from hdlgen.ir import Graph
    g2 = Graph("other", "a", graph.types()["conv0_act"])
    g2.add("c", "conv2d", "a", other, {"weight": conv1.params["weight"]})
    assert not np.array_equal(run(g2, g["conv0_act"])["c"], g["conv1"])


def test_first_layer_pads_with_zero_pixels():
    torch.manual_seed(0)
    conv = BinaryConv2d(1, 2, 3, 1, 1, pad_value=1)
    net = BinaryNet(InputQuant((3, 3, 1)), conv, Flatten(), BinaryDense(18, 2, activation=False))
    assert conv.input_dtype == uint(8) and conv.effective_pad_value == 0
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bn.running_mean.zero_()
        conv.bn.running_var.fill_(1.0)
    x = np.full((1, 3, 3, 1), 10, np.uint8)
    acc = _accumulators(conv, torch.from_numpy(x).double())
    assert acc[0, :, :, 0].tolist() == [[40, 60, 40], [60, 90, 60], [40, 60, 40]]
    graph = export(net.eval(), "zero", {})
    assert graph.node("conv0").attrs["pad_value"] == 0
    assert run(graph, x)["conv0"][0, :, :, 0].tolist() == [[40, 60, 40], [60, 90, 60], [40, 60, 40]]


def test_exported_conv_weights_are_exactly_bipolar_in_ir_layout():
    net = small_cnn(seed=3)
    with torch.no_grad():
        net.conv_layers()[1].weight[0, 0, 0, 0] = 0.0  # sign(0) = +1
        net.conv_layers()[1].bn.weight.fill_(1.0)
    graph = export(net.eval(), "w", {})
    for j, m in enumerate(net.conv_layers()):
        w = graph.node(f"conv{j}").params["weight"]
        assert w.dtype == np.int8 and set(np.unique(w)) == {-1, 1}
        assert graph.node(f"conv{j}").attrs["weight_dtype"] == "bipolar"
        latent = m.weight.detach().numpy().transpose(0, 2, 3, 1)
        _, negate = m.integer_thresholds()
        expect = np.where(latent >= 0, 1, -1) * np.where(negate, -1, 1)[:, None, None, None]
        assert w.shape == (m.out_channels, m.kernel_size, m.kernel_size, m.in_channels)
        assert np.array_equal(w, expect)
    assert graph.node("conv1").params["weight"][0, 0, 0, 0] == 1


def test_conv_thresholds_use_the_shared_fold():
    net = small_cnn(seed=4)
    x = random_images(8, (9, 8, 3), 4)
    randomize_bn(net, x, 4)
    graph = export(net, "t", {})
    for j, m in enumerate(net.conv_layers()):
        bn = m.bn
        t, neg = bn_sign_thresholds(bn.weight.detach().numpy(), bn.bias.detach().numpy(),
                                    bn.running_mean.numpy(), bn.running_var.numpy(), bn.eps,
                                    m.input_scale, graph.node(f"conv{j}").type.dtype)
        assert np.array_equal(graph.node(f"conv{j}_act").params["thresholds"][:, 0], t)
    assert net.conv_layers()[0].input_scale == 255 and net.conv_layers()[1].input_scale == 1
    assert net.conv_layers()[1].input_dtype == BIPOLAR


def test_flatten_order_is_channels_last():
    torch.manual_seed(1)
    net = small_cnn(seed=1)
    x = random_images(6, (9, 8, 3), 1)
    randomize_bn(net, x, 1)
    graph = export(net, "flat", {})
    g = run(graph, x)
    assert np.array_equal(g["flatten"], g["conv2_act"].reshape(len(x), -1))
    h = torch.from_numpy(x)
    for m in list(net.layers)[:6]:
        h = m(h)
    assert np.array_equal(int64(h), g["flatten"])


def test_float_reference_agrees_with_integer_path():
    net = small_cnn(seed=5)
    x = random_images(64, (9, 8, 3), 5)
    ints, floats = integer_and_float(net, x, lambda n, b: n.hidden_outputs(b))
    for (_, a), (_, b) in zip(ints[:-1], floats[:-1]):
        assert a.dtype == torch.float64 and b.dtype == torch.float32
        assert (a.float() == b).float().mean() > 0.99
    assert (ints[-1][1].argmax(1) == floats[-1][1].argmax(1)).float().mean() > 0.9


def test_training_step_reaches_conv_weights_and_clips():
    net = small_cnn(seed=6)
    net.train()
    x = torch.from_numpy(random_images(8, (9, 8, 3), 6))
    loss = nn.functional.cross_entropy(net(x), torch.arange(8) % 5)
    loss.backward()
    for m in net.conv_layers():
        assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0
    with torch.no_grad():
        net.conv_layers()[0].weight.fill_(3.0)
    net.clip_weights()
    assert net.conv_layers()[0].weight.max() == 1.0


def test_export_errors_name_the_module():
    layers = list(small_cnn().layers)
    bad = BinaryNet(*layers[:2], nn.Conv2d(6, 6, 3), *layers[2:])
    with pytest.raises(HdlgenError, match=r"'layers\.2' of type Conv2d"):
        export(bad, "bad", {})
    with pytest.raises(HdlgenError, match=r"'layers\.2' \(BinaryDense\).*Flatten"):
        export(BinaryNet(InputQuant((4, 4, 1)), BinaryConv2d(1, 2, 3),
                         BinaryDense(8, 2, activation=False)), "noflat", {})
    net = BinaryNet(InputQuant((6, 6, 1)), BinaryConv2d(1, 2, 3), BinaryConv2d(2, 2, 3), Flatten(),
                    BinaryDense(8, 2, activation=False))
    net.layers[2].in_channels = 3
    with pytest.raises(HdlgenError, match=r"'layers\.2' \(BinaryConv2d\).*in_channels=3"):
        export(net, "chan", {})
    with pytest.raises(HdlgenError, match=r"layers\.3'? \(MaxPool\).*image"):
        export(BinaryNet(InputQuant((6, 6, 1)), BinaryConv2d(1, 2, 3), Flatten(), MaxPool(2),
                         BinaryDense(32, 2, activation=False)), "pool", {})


def test_construction_errors():
    with pytest.raises(HdlgenError, match="pad_value must be \\+1 or -1"):
        BinaryConv2d(1, 2, 3, 1, 1, pad_value=0)
    with pytest.raises(HdlgenError, match="padding 3 must be smaller"):
        BinaryConv2d(1, 2, 3, 1, 3)
    with pytest.raises(HdlgenError, match="stride"):
        BinaryConv2d(1, 2, 3, 0)
    with pytest.raises(HdlgenError, match=r"layers\.2 \(BinaryConv2d\) has in_channels=4"):
        BinaryNet(InputQuant((6, 6, 1)), BinaryConv2d(1, 2, 3), BinaryConv2d(4, 2, 3), Flatten(),
                  BinaryDense(8, 2, activation=False))
    with pytest.raises(HdlgenError, match=r"layers\.3 \(BinaryConv2d\).*Flatten"):
        BinaryNet(InputQuant((6, 6, 1)), BinaryConv2d(1, 2, 3), Flatten(), BinaryConv2d(2, 2, 3),
                  BinaryDense(8, 2, activation=False))
    with pytest.raises(HdlgenError, match=r"does not fit"):
        BinaryNet(InputQuant((2, 2, 1)), BinaryConv2d(1, 2, 3), Flatten(), BinaryDense(8, 2, activation=False))


def test_cnv_recipe_shapes_and_export():
    net, config = build_model("cnv", {"width": 0.125})
    assert config["width"] == 0.125
    graph = export(net.eval(), "cnv-tiny", {})
    t = graph.types()
    convs = [n.name for n in graph.nodes if n.op == "conv2d"]
    assert len(convs) == 6
    assert [t[c].shape for c in convs] == [(30, 30, 8), (28, 28, 8), (12, 12, 16), (10, 10, 16),
                                           (3, 3, 32), (1, 1, 32)]
    assert [t[p].shape for p in ("pool0", "pool1")] == [(14, 14, 8), (5, 5, 16)]
    assert [t[f].shape for f in ("fc0", "fc1", "fc2")] == [(64,), (64,), (10,)]
    assert str(t["conv0"].dtype) == "sint16" or t["conv0"].dtype.bits >= 14
    x = random_images(6, (32, 32, 3), 8)
    randomize_bn(net, x, 8)
    check_exact(net, export(net, "cnv-tiny", {}), x)
    full, _ = build_model("cnv", {})
    assert [m.out_channels for m in full.conv_layers()] == [64, 64, 128, 128, 256, 256]
    assert [m.out_features for m in full.dense_layers()] == [512, 512, 10]
    with pytest.raises(HdlgenError, match="width"):
        build_model("cnv", {"width": 0})


SHIPPED = Path(__file__).resolve().parent.parent / "models" / "cnv-cifar10"


@pytest.mark.skipif(not (SHIPPED / "checkpoint.pt").is_file(), reason="cnv-cifar10 is not shipped")
def test_shipped_cnv_is_exact_on_samples():
    from hdlgen.nn.checkpoint import load_checkpoint
    from hdlgen.nn.evaluate import predict

    assert (SHIPPED / "checkpoint.pt").stat().st_size < 4_000_000
    model, ckpt = load_checkpoint(SHIPPED / "checkpoint.pt")
    assert ckpt["recipe"] == "cnv" and ckpt["meta"]["dataset"] == "cifar10" and "train_state" not in ckpt
    with np.load(SHIPPED / "samples.npz", allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    assert x.dtype == np.uint8 and x.shape == (500, 32, 32, 3) and y.shape == (500,)
    assert y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    x, y = x[:64], y[:64]
    graph = export(model, "cnv-cifar10", ckpt["meta"])
    check_exact(model, graph, x)
    pred = predict(model, x)
    assert (pred == y).mean() > 0.3
    assert (predict(model, x, float_reference=True) == pred).mean() > 0.9
