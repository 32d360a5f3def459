"""The binarized ResNet-14 in the integer IR: export exactness against the PyTorch integer path
(every tensor), the integer path against the float computation, the +-1 weights, pruned
shapes, checkpoints through export / eval / train, and the errors for what cannot be exported."""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hdlgen.errors import HdlgenError
from hdlgen.golden import run
from hdlgen.nn.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from hdlgen.nn.compress import SignConv2d, load_float_into_binary
from hdlgen.evaluate_cli import add_eval_arguments, cli_eval
from hdlgen.nn.evaluate import predict
from hdlgen.nn.export import export, export_checkpoint
from hdlgen.nn.prune import prune
from hdlgen.nn.recipes import load_recipe
from nn_helpers import one_thread, random_images  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def recipe():
    return load_recipe("resnet14")


def randomize(net, x, seed=0):
    """Latent weights far from +-1, random BatchNorm affine (negative and zero scales among
    them) and running statistics from training-mode passes."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if getattr(m, "binary_weights", False):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.6 - 0.3)
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
                m.weight[0] = 0
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
        net.train()
        for _ in range(2):
            net(torch.as_tensor(x))
    net.eval()
    return net


def small(recipe, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("widths", [6, 8, 10])
    return recipe.build(binary=True, **kw)


NODES = (["stem", "stem_act"]
         + [f"s{i}b{j}_{p}" for i in range(3) for j in range(2)
            for p in (["conv1", "act1", "conv2"] + (["sc", "sc_act"] if i and not j else []) + ["add"])]
         + ["pool", "fc", "cls"])


@pytest.mark.parametrize("inner", [None, [3, 5, 4, 7, 2, 9]])
def test_export_is_exact_on_every_tensor(recipe, inner):
    x = random_images(12, (32, 32, 3), seed=1)
    net = randomize(small(recipe, inner=inner), x)
    g = export(net, "r14")
    assert [n.name for n in g.nodes] == NODES
    ops = {n.name: n.op for n in g.nodes}
    assert ops["s1b0_add"] == "select_threshold" and ops["pool"] == "globalsum" and ops["s1b0_sc"] == "conv2d"
    assert tuple(g.node("s1b0_add").inputs) == ("s1b0_conv2", "s1b0_sc_act")
    assert tuple(g.node("s0b1_add").inputs) == ("s0b1_conv2", "s0b0_add")  # identity shortcut
    assert g.node("s1b0_conv1").attrs["stride"] == 2 and g.node("s1b0_sc").attrs == {
        "weight_dtype": "bipolar", "kernel": 1, "stride": 2, "pad": 0, "pad_value": -1}
    assert g.node("stem").attrs["pad_value"] == 0 and g.node("s0b0_conv1").attrs["pad_value"] == -1
    types = g.types()
    assert types["s2b1_add"].shape == (8, 8, 10) and types["pool"].shape == (10,)
    if inner:
        assert types["s1b1_act1"].shape == (16, 16, 7)
    golden = run(g, x)
    ints = net.integer_forward(torch.from_numpy(x), keep=True)
    assert set(ints) == set(golden)
    for name, v in golden.items():
        assert np.array_equal(v, ints[name]), name
    # both values of each residual tensor and of the class decisions occur
    for name in ("stem_act", "s0b1_add", "s1b0_add", "s2b1_add"):
        assert set(np.unique(golden[name])) == {-1, 1}, name
    with net.float_mode(False):
        pred = predict(net, x)
    assert np.array_equal(pred, golden["cls"][:, 0])
    g2 = export_checkpoint_roundtrip(net, recipe, inner)
    assert g2.weight_bits() == g.weight_bits()


def export_checkpoint_roundtrip(net, recipe, inner):
    import tempfile
    from pathlib import Path

    cfg = dict(recipe.DEFAULTS, widths=[6, 8, 10], inner=inner, binary=True)
    with tempfile.TemporaryDirectory() as d:
        path = save_checkpoint(make_checkpoint(net, "resnet14", cfg, {"name": "r", "dataset": "cifar10"}),
                               Path(d) / "checkpoint.pt")
        return export_checkpoint(path)


def test_integer_path_is_the_float_computation(recipe):
    """In float64 the float path and the integer one agree on every activation: the thresholds
    are BatchNorm + sign (+ shortcut), the pool a sum and the output scale positive."""
    x = random_images(10, (32, 32, 3), seed=2)
    net = randomize(small(recipe, inner=[4, 6, 3, 8, 5, 7]), x, seed=3).double()
    seen = {}
    blocks = [(f"s{i}b{j}_add", b) for i, s in enumerate(net.stages) for j, b in enumerate(s)]
    hooks = [net.stem_act.register_forward_hook(lambda m, i, o: seen.update(stem_act=o))]
    for name, b in blocks:
        hooks.append(b.register_forward_hook(lambda m, i, o, name=name: seen.update({name: o})))
        hooks.append(b.act1.register_forward_hook(
            lambda m, i, o, name=name: seen.update({name.replace("add", "act1"): o})))
    with net.float_mode(True), torch.no_grad():
        float_scores = net(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    ints = net.integer_forward(torch.from_numpy(x), keep=True)
    assert len(seen) == 13
    for name, t in seen.items():
        assert np.array_equal(t.permute(0, 2, 3, 1).numpy().astype(np.int64), ints[name]), name
    positions = 8 * 8
    rescaled = float_scores.numpy() / net.fc.log_scale.exp().item() * positions
    assert np.allclose(rescaled, ints["fc"], atol=1e-6)


def test_ir_weights_are_the_signs_of_the_latent_weights(recipe):
    x = random_images(6, (32, 32, 3), seed=4)
    net = randomize(small(recipe), x, seed=5)
    g = export(net, "r14")
    convs = {"stem": (net.stem, net.stem_bn)}
    for i, stage in enumerate(net.stages):
        for j, b in enumerate(stage):
            convs[f"s{i}b{j}_conv1"] = (b.conv1, b.bn1)
            convs[f"s{i}b{j}_conv2"] = (b.conv2, b.bn2)
            if not isinstance(b.shortcut, nn.Identity):
                convs[f"s{i}b{j}_sc"] = (b.shortcut[0], b.shortcut[1])
    for name, (conv, bn) in convs.items():
        w = g.node(name).params["weight"]
        assert w.dtype == np.int8 and set(np.unique(w)) == {-1, 1}, name
        latent = conv.weight.detach().permute(0, 2, 3, 1).numpy()
        assert np.abs(latent).max() < 0.31  # binarization must have done something
        flip = np.where(bn.weight.detach().numpy() < 0, -1, 1)[:, None, None, None]
        assert np.array_equal(w, np.where(latent >= 0, 1, -1) * flip), name
    fc = g.node("fc").params["weight"]
    assert np.array_equal(fc, np.where(net.fc.weight.detach().numpy() >= 0, 1, -1))
    assert g.weight_bits() == sum(p.numel() for n, p in net.named_parameters()
                                  if n.endswith("weight") and p.dim() > 1)
    # the weights the float path uses are the same signs
    with torch.no_grad():
        assert torch.equal(net.stem.effective_weight(), torch.where(net.stem.weight >= 0, 1.0, -1.0))


def test_pruned_network_exports_exactly(recipe):
    torch.manual_seed(0)
    x = random_images(24, (32, 32, 3), seed=6)
    base = recipe.build(widths=[8, 8, 12], binary=False)
    base.train()
    with torch.no_grad():
        base(torch.from_numpy(x))
    base.eval()
    pruned, report = prune(base, x, 0.5, method="thinet", mode="layer", scope="all", samples=128)
    cfg = recipe.pruned_config(pruned, dict(recipe.DEFAULTS, widths=[8, 8, 12]))
    assert cfg["widths"] == [4, 4, 6] and cfg["inner"] == [4, 4, 4, 4, 6, 6]
    binary = load_float_into_binary(recipe.build(**cfg, binary=True), pruned.state_dict())
    randomize(binary, x, seed=7)
    g = export(binary, "pruned")
    assert g.types()["stem_act"].shape == (32, 32, 4) and g.node("fc").params["weight"].shape == (10, 6)
    golden = run(g, x)
    ints = binary.integer_forward(torch.from_numpy(x), keep=True)
    for name, v in golden.items():
        assert np.array_equal(v, ints[name]), name


def test_export_errors(recipe):
    with pytest.raises(HdlgenError, match="float resnet"):
        export(recipe.build(widths=[4, 4, 4]), "f")
    net = small(recipe)
    net.stages[1][0].act1 = nn.ReLU()
    with pytest.raises(HdlgenError, match=r"'stages\.1\.0\.act1' of type ReLU"):
        export(net, "x")
    net = small(recipe)
    net.fc = nn.Linear(10, 10, bias=False)
    with pytest.raises(HdlgenError, match="'fc' of type Linear"):
        export(net, "x")
    net = small(recipe)
    net.stages[0][1].conv2 = nn.Conv2d(6, 6, 3, 1, 1, bias=False)
    with pytest.raises(HdlgenError, match="Conv2d: expected SignConv2d"):
        export(net, "x")
    net = small(recipe)
    net.stem.pad_value = -1.0
    with pytest.raises(HdlgenError, match="pad_value"):
        export(net, "x")
    net = small(recipe)
    net.pool = nn.AdaptiveMaxPool2d(1)
    with pytest.raises(HdlgenError, match="AdaptiveAvgPool2d"):
        export(net, "x")
    net = small(recipe)
    net.stages[2][0].shortcut = nn.Sequential(SignConv2d(8, 10, 1, 2), nn.BatchNorm2d(10))
    with pytest.raises(HdlgenError, match="shortcut"):
        export(net, "x")
    with pytest.raises(HdlgenError, match="input batch"):
        small(recipe).integer_forward(torch.zeros(2, 16, 16, 3, dtype=torch.uint8))


def test_checkpoint_eval_and_load_graph(recipe, tmp_path, capsys, monkeypatch):
    from hdlgen.model import load_graph

    x = random_images(20, (32, 32, 3), seed=8)
    y = np.random.default_rng(0).integers(0, 10, 20)
    net = randomize(small(recipe, widths=[4, 6, 8], inner=[2, 4, 3, 6, 5, 8]), x, seed=9)
    cfg = recipe.pruned_config(net, dict(recipe.DEFAULTS))
    cfg["binary"] = True
    folder = tmp_path / "models" / "r14-test"
    save_checkpoint(make_checkpoint(net, "resnet14", cfg, {"name": "r14-test", "dataset": "cifar10",
                                                             "classes": [str(i) for i in range(10)]}),
                    folder / "checkpoint.pt")
    np.savez(tmp_path / "cifar10_test.npz", x=x, y=y)
    model, ckpt = load_checkpoint(folder / "checkpoint.pt")
    assert ckpt["config"]["inner"] == [2, 4, 3, 6, 5, 8] and model.binary
    p = add_eval_arguments(argparse.ArgumentParser())
    assert cli_eval(p.parse_args(["--model", str(folder / "checkpoint.pt"), "--data", str(tmp_path),
                                  "--json", "--batch-size", "8", "--jobs", "2"])) == 0
    result = json.loads(capsys.readouterr().out)
    graph = export(net, "r14-test")
    assert result["mismatches"] == 0 and result["count"] == 20
    assert result["weight_bits"] == graph.weight_bits()
    want = (run(graph, x)["cls"][:, 0] == y).mean()
    assert result["accuracy"]["golden"] == pytest.approx(want) == pytest.approx(result["accuracy"]["integer"])
    shutil.copy(recipe.__file__, tmp_path / "models")  # the folder holds recipes and shipped models
    monkeypatch.setenv("HDLGEN_MODELS", str(tmp_path / "models"))
    loaded = load_graph("r14-test")
    assert loaded.name == "r14-test" and [n.name for n in loaded.graph.nodes] == NODES
    assert loaded.graph.meta["config"]["widths"] == [4, 6, 8]


@pytest.mark.parametrize("binary", [True, False])
def test_train_cli_finishes_a_resnet(tmp_path, capsys, binary):
    from hdlgen.nn.train import add_train_arguments, cli_train
    from test_nn_prune import _write_dataset

    data = tmp_path / "data"
    _write_dataset(data, "cifar10")
    out = tmp_path / "r" / "checkpoint.pt"
    p = add_train_arguments(argparse.ArgumentParser())
    args = p.parse_args(["resnet14", "--data", str(data), "--dataset", "cifar10", "--epochs", "1",
                         "--out", str(out), "--batch-size", "16", "--log-every", "0",
                         "--config", json.dumps({"widths": [4, 4, 6], "binary": binary})])
    assert cli_train(args) == 0
    text = capsys.readouterr().out
    model, ckpt = load_checkpoint(out)
    acc = ckpt["meta"]["accuracy"]
    if binary:
        assert acc["golden"] == acc["integer"] and "golden IR" in text
        assert [n.name for n in export_checkpoint(out).nodes] == NODES
    else:
        assert acc["golden"] is None and "golden IR n/a" in text
        with pytest.raises(HdlgenError, match="float resnet"):
            export_checkpoint(out)


SHIPPED = Path(__file__).resolve().parent.parent / "models" / "resnet14-cifar10"


@pytest.mark.skipif(not (SHIPPED / "checkpoint.pt").is_file(), reason="resnet14-cifar10 is not shipped")
def test_shipped_resnet14():
    model, ckpt = load_checkpoint(SHIPPED / "checkpoint.pt")
    cfg = ckpt["config"]
    assert ckpt["recipe"] == "resnet14" and cfg["binary"] is True and "train_state" not in ckpt
    assert all(w < full for w, full in zip(cfg["widths"], [64, 128, 256]))  # pruned, shortcuts included
    assert len(cfg["inner"]) == 6 and ckpt["meta"]["dataset"] == "cifar10"
    graph = export(model, "resnet14-cifar10", ckpt["meta"])
    assert [n.name for n in graph.nodes] == NODES and graph.weight_bits() <= 1_860_000
    with np.load(SHIPPED / "samples.npz", allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(x) == len(y) >= 200
    golden = run(graph, x[:12])
    ints = model.integer_forward(torch.from_numpy(x[:12]), keep=True)
    for name, v in golden.items():
        assert np.array_equal(v, ints[name]), name
