"""Filter pruning (channel groups, ThiNet and L1 selection, physical removal), binarization and
the operation counters, on tiny networks; and the compression pipeline end to end on generated
CIFAR-10, CIFAR-100 and SVHN files."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hdlgen.errors import HdlgenError
from hdlgen.nn.compress import (CompressSettings, SignActivation, SignConv2d, SignFC, binary_weights,
                                load_float_into_binary, main as compress_main, residual_sign_thresholds)
from hdlgen.nn.prune import (channel_groups, consumer_samples, count_ops, prune, prune_channels, select,
                             thinet_order)
from hdlgen.nn.recipes import load_recipe
from nn_helpers import one_thread  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def resnet():
    return load_recipe("resnet14")


def images(n=16, seed=0):
    return torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def settle_bn(model, x):
    """A few training-mode passes so BatchNorm running statistics are not trivial."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    model.eval()


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 5, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(5)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def test_groups_of_a_chain():
    g = channel_groups(Chain(), torch.randn(2, 3, 8, 8))
    by_producer = {tuple(x.producers): x for x in g}
    a, b = by_producer[("conv1",)], by_producer[("conv2",)]
    assert a.prunable and a.consumers == ["conv2"] and a.size == 6 and not a.tied
    assert b.prunable and b.followers == ["bn2"] and b.consumers == ["fc"]
    assert not by_producer[("fc",)].prunable and "network output" in by_producer[("fc",)].frozen
    assert not by_producer[()].prunable  # the network input


def test_pruning_removes_filters_and_keeps_function_of_zero_filters():
    torch.manual_seed(0)
    net = Chain().eval()
    with torch.no_grad():
        net.conv1.weight[[1, 4]] = 0
        net.conv1.bias[[1, 4]] = 0
    x = torch.randn(8, 3, 8, 8)
    pruned, report = prune(net, x, 1 / 3, method="l1", mode="layer")
    assert pruned.conv1.weight.shape == (4, 3, 3, 3) and pruned.conv1.bias.shape == (4,)
    assert pruned.conv2.weight.shape[1] == 4 and pruned.conv2.in_channels == 4
    assert pruned.conv2.weight.shape[0] == 4 and pruned.bn2.running_mean.shape == (4,)
    assert pruned.fc.weight.shape == (2, 4)
    assert net.conv1.weight.shape == (6, 3, 3, 3)  # the original is untouched
    assert torch.equal(pruned.conv1.weight, net.conv1.weight[[0, 2, 3, 5]])  # the zero filters went
    groups = channel_groups(net, x[:2])
    g1 = next(g for g in groups if g.producers == ["conv1"])
    only = prune_channels(net, groups, {g1.index: [0, 2, 3, 5]})
    assert only.conv1.out_channels == 4 and only.conv2.weight.shape == (5, 4, 3, 3)
    with torch.no_grad():
        assert torch.allclose(only(x), net(x), atol=1e-6)
    assert report["groups"][[r["producers"] for r in report["groups"]].index(["conv1"])]["kept"] == 4


def test_prune_errors():
    net = Chain()
    groups = channel_groups(net, torch.randn(2, 3, 8, 8))
    frozen = next(g for g in groups if not g.prunable)
    with pytest.raises(HdlgenError, match="may not be pruned"):
        prune_channels(net, groups, {frozen.index: [0]})
    g1 = next(g for g in groups if g.producers == ["conv1"])
    with pytest.raises(HdlgenError, match="distinct indices"):
        prune_channels(net, groups, {g1.index: [0, 0]})
    with pytest.raises(HdlgenError, match="unknown pruning method"):
        prune(net, torch.randn(4, 3, 8, 8), 0.5, method="random")
    with pytest.raises(HdlgenError, match=r"rate must lie in \[0, 1\)"):
        prune(net, torch.randn(4, 3, 8, 8), 1.0, method="l1")


def test_resnet_groups_tie_shortcuts(resnet):
    net = resnet.build(widths=[4, 8, 16])
    groups = channel_groups(net, images(2))
    tied = [g for g in groups if g.tied]
    assert len(tied) == 3 and all(g.prunable for g in tied)
    assert set(tied[0].producers) == {"stem", "stages.0.0.conv2", "stages.0.1.conv2"}
    assert set(tied[1].producers) == {"stages.1.0.conv2", "stages.1.1.conv2", "stages.1.0.shortcut.0"}
    assert "stages.1.0.shortcut.0" in tied[0].consumers and "fc" in tied[2].consumers
    inner = [g for g in groups if g.prunable and not g.tied]
    assert sorted(p for g in inner for p in g.producers) == sorted(
        f"stages.{s}.{b}.conv1" for s in range(3) for b in range(2))


@pytest.mark.parametrize("method,mode", [("l1", "layer"), ("l1", "global"), ("thinet", "layer"),
                                         ("thinet", "global")])
def test_resnet_pruning_consistent(resnet, method, mode):
    torch.manual_seed(1)
    net = resnet.build(widths=[8, 8, 16])
    x = images(16)
    settle_bn(net, x)
    pruned, report = prune(net, x, 0.5, method=method, mode=mode, samples=512)
    cfg = resnet.pruned_config(pruned, {"widths": [8, 8, 16]})
    kept = sum(r["kept"] for r in report["groups"] if r["prunable"])
    total = sum(r["channels"] for r in report["groups"] if r["prunable"])
    assert kept < total and (mode == "global" or kept == total // 2)
    for stage in pruned.stages:  # the tied producers agree
        outs = {b.conv2.out_channels for b in stage}
        assert len(outs) == 1
    assert pruned.stem.out_channels == pruned.stages[0][0].conv2.out_channels
    rebuilt = resnet.build(**cfg)
    rebuilt.load_state_dict(pruned.state_dict())  # same shapes, strict
    with torch.no_grad():
        assert pruned(x).shape == (16, 10)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in net.parameters())


def test_resnet_scope_inner_leaves_tied_groups(resnet):
    net = resnet.build(widths=[8, 8, 16])
    pruned, report = prune(net, images(8), 0.5, method="l1", scope="inner")
    assert resnet.pruned_config(pruned, {})["widths"] == [8, 8, 16]
    assert [b.conv1.out_channels for s in pruned.stages for b in s] == [4, 4, 4, 4, 8, 8]


def test_resnet_removing_dead_tied_channel_keeps_function(resnet):
    torch.manual_seed(2)
    net = resnet.build(widths=[6, 8, 8])
    x = images(8)
    settle_bn(net, x)
    groups = channel_groups(net, x[:2])
    g = next(g for g in groups if g.tied and "stem" in g.producers)
    with torch.no_grad():
        for name in g.followers:  # channel 2 of the stem / stage-1 group outputs exactly 0
            bn = net.get_submodule(name)
            bn.weight[2] = 0
            bn.bias[2] = 0
        ref = net(x)
    pruned = prune_channels(net, groups, {g.index: [0, 1, 3, 4, 5]})
    assert pruned.stem.weight.shape[0] == 5 and pruned.stages[1][0].shortcut[0].weight.shape[1] == 5
    with torch.no_grad():
        assert torch.allclose(pruned(x), ref, atol=1e-5)


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 1, bias=False)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x))).mean((2, 3))


def test_thinet_reconstructs_better_than_random_and_l1():
    torch.manual_seed(3)
    net = TwoLayer()
    with torch.no_grad():
        # conv1's filters all have the same L1 norm, so L1 cannot tell the channels apart
        net.conv1.weight.copy_(torch.sign(torch.randn(8, 3, 1, 1)))
        # the channels 0, 2, 5, 7 hardly reach conv2's output
        net.conv2.weight[:, [0, 2, 5, 7]] *= 0.02
    x = torch.randn(64, 3, 6, 6)
    groups = channel_groups(net, x[:2])
    g = next(g for g in groups if g.producers == ["conv1"])
    contrib = consumer_samples(net, [g], x, samples=2000, seed=0)
    order, costs = thinet_order(g, contrib)
    assert sorted(order[:4]) == [0, 2, 5, 7]
    assert all(c >= -1e-9 for c in costs)

    def error(removed):
        with torch.no_grad():
            a = torch.relu(net.conv1(x))
            mask = torch.ones(8)
            mask[list(removed)] = 0
            return float((net.conv2(a) - net.conv2(a * mask[None, :, None, None])).pow(2).mean())

    rng = np.random.default_rng(0)
    random_errors = [error(rng.choice(8, 4, replace=False)) for _ in range(20)]
    assert error(order[:4]) < min(random_errors)
    pruned, _ = prune(net, x, 0.5, method="thinet", samples=2000)
    assert pruned.conv1.out_channels == 4
    # the least-squares rescale does not hurt the kept channels' reconstruction
    with torch.no_grad():
        full = net.conv2(torch.relu(net.conv1(x)))
        kept = pruned.conv2(torch.relu(pruned.conv1(x)))
        plain, _ = prune(net, x, 0.5, method="thinet", samples=2000, rescale=False)
        unscaled = plain.conv2(torch.relu(plain.conv1(x)))
    assert float((kept - full).pow(2).mean()) <= float((unscaled - full).pow(2).mean()) * 1.01


def test_select_layer_and_global():
    orders = {0: ([3, 1, 0, 2], [0.1, 0.2, 5.0, 6.0]), 1: ([0, 1, 2, 3], [0.3, 0.4, 0.5, 0.6])}
    sizes = {0: 4, 1: 4}
    assert select(orders, sizes, 0.5, "layer") == {0: [0, 2], 1: [2, 3]}
    # global: the four cheapest removals are 3 and 1 of group 0, then 0 and 1 of group 1
    assert select(orders, sizes, 0.5, "global") == {0: [0, 2], 1: [2, 3]}
    assert select(orders, sizes, 0.75, "global", min_fraction=0.5) == {0: [0, 2], 1: [2, 3]}
    assert select(orders, sizes, 0.25, "global") == {0: [0, 2], 1: [0, 1, 2, 3]}
    assert select(orders, sizes, 0.0, "layer") == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3]}


def test_count_ops_by_hand():
    float_net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                              nn.Flatten(), nn.Linear(4, 2))
    c = count_ops(float_net, torch.randn(2, 3, 8, 8))
    assert c["macs"] == 8 * 8 * 4 * 3 * 9 + 4 * 2 and c["bops"] == 0 and c["flops"] == c["macs"]
    assert c["params"] == 4 * 3 * 9 + 4 * 2 + 2 and c["weight_bits"] == 32 * c["params"]
    binary_net = nn.Sequential(SignConv2d(3, 4, 3, 1, 1, pad_value=0), nn.BatchNorm2d(4), SignActivation(),
                               SignConv2d(4, 6, 3, 2, 1), nn.BatchNorm2d(6), SignActivation(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), SignFC(6, 2))
    c = count_ops(binary_net, torch.rand(2, 3, 8, 8))
    first, second, fc = 8 * 8 * 4 * 3 * 9, 4 * 4 * 6 * 4 * 9, 6 * 2
    assert c["macs"] == first + second + fc
    assert c["bops"] == second  # +-1 inputs and weights; the pixels and the pooled sums are multi-bit
    assert c["flops"] == first + fc
    assert c["weight_bits"] == 4 * 3 * 9 + 6 * 4 * 9 + 6 * 2


def test_binarized_layers_use_and_export_plus_minus_one():
    torch.manual_seed(4)
    conv = SignConv2d(3, 5, 3, 1, 1)
    x = torch.sign(torch.randn(2, 3, 6, 6))
    ref = F.conv2d(F.pad(x, (1, 1, 1, 1), value=-1.0), torch.where(conv.weight >= 0, 1.0, -1.0))
    assert torch.equal(conv(x), ref)
    net = nn.Sequential(conv, SignActivation(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), SignFC(5, 3))
    ws = binary_weights(net)
    assert set(ws) == {"0", "4"}
    for w in ws.values():
        assert w.dtype == np.int8 and set(np.unique(w)) <= {-1, 1}
    assert set(np.unique(ws["0"])) == {-1, 1}


def test_binary_resnet_from_float(resnet):
    f = resnet.build(widths=[4, 8, 8])
    b = resnet.build(widths=[4, 8, 8], binary=True)
    load_float_into_binary(b, f.state_dict())
    assert torch.equal(b.stem.weight, f.stem.weight)
    ws = binary_weights(b)
    assert len(ws) == 1 + 12 + 2 + 1  # stem, 12 block convs, 2 shortcuts, fc
    assert all(set(np.unique(w)) <= {-1, 1} for w in ws.values())
    with pytest.raises(HdlgenError, match="differ"):
        load_float_into_binary(resnet.build(widths=[4, 8, 16], binary=True), f.state_dict())
    c = count_ops(b, images(2))
    assert c["bops"] > 0.9 * c["macs"] and c["weight_bits"] == c["params"]


@pytest.mark.parametrize("block_index", [0, 2])
def test_binary_residual_add_is_a_threshold_chosen_by_the_shortcut(resnet, block_index):
    torch.manual_seed(5)
    net = resnet.build(widths=[6, 8, 8], binary=True)
    x = images(8)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(-1, 1)
                m.bias.uniform_(-0.5, 0.5)
    settle_bn(net, x)
    net.double()
    block = [b for s in net.stages for b in s][block_index]
    seen = {}
    block.register_forward_hook(lambda m, i, o: seen.update(x=i[0], out=o))
    with torch.no_grad():
        net(x)
        bx = seen["x"]
        h = block.act1(block.bn1(block.conv1(bx)))
        acc = block.conv2(h)  # exact integers: +-1 inputs, +-1 weights, -1 padding
        s = block.shortcut(bx)
    assert set(torch.unique(s).tolist()) <= {-1.0, 1.0} and torch.equal(acc, torch.round(acc))
    t, negate = residual_sign_thresholds(block.bn2, block.conv2.in_channels * 9)
    t = torch.from_numpy(t).double()
    sel = torch.where(s > 0, t[None, :, 1, None, None], t[None, :, 0, None, None])
    sgn = torch.from_numpy(np.where(negate, -1.0, 1.0))[None, :, None, None]
    integer = torch.where(acc * sgn >= sel, 1.0, -1.0)
    assert torch.equal(integer, seen["out"])


def test_settings_checks():
    assert CompressSettings.from_json(CompressSettings().to_json()) == CompressSettings()
    with pytest.raises(HdlgenError, match="rate"):
        CompressSettings(rates=(1.2,))
    with pytest.raises(HdlgenError, match="unknown method"):
        CompressSettings(method="magic")
    with pytest.raises(HdlgenError, match="unknown compression settings"):
        CompressSettings.from_json({"rate": 1})


# -- the pipeline end to end on generated data ------------------------------------------------------

def _write_dataset(root, name):
    from test_nn_loaders import write_cifar_batch, write_svhn

    rng = np.random.default_rng(0)
    if name == "svhn":
        write_svhn(root, "train", n=48)
        write_svhn(root, "test", n=16, seed=1)
        return
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        files, key, classes = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", 10
    else:
        folder = root / "cifar-100-python"
        files, key, classes = ["train", "test"], b"fine_labels", 100
    folder.mkdir(parents=True)
    for f in files:
        n = 16 if f == "test_batch" or f == "test" else (10 if name == "cifar10" else 48)
        write_cifar_batch(folder / f, rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                          rng.integers(0, classes, n), label_key=key)


@pytest.mark.parametrize("dataset", ["cifar10", "svhn", "cifar100"])
def test_compress_pipeline_end_to_end(tmp_path, dataset, capsys):
    from hdlgen.nn.checkpoint import load_checkpoint

    data = tmp_path / "data"
    _write_dataset(data, dataset)
    out = tmp_path / "out"
    method = "l1" if dataset == "cifar100" else "thinet"
    rc = compress_main(["resnet14", "--data", str(data), "--dataset", dataset, "--out", str(out),
                        "--config", json.dumps({"widths": [4, 8, 8]}), "--rates", "0,0.5",
                        "--method", method, "--epochs", "1,1,1",
                        "--settings", json.dumps({"batch_size": 16, "samples": 256, "calib_images": 16})])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "results.json").read_text())
    rows = {r["model"]: r for r in result["rows"]}
    assert list(rows) == ["float", "binary-0", "float-pruned-0.5", "binary-0.5"]
    assert rows["float"]["compression"] == 1.0 and rows["binary-0"]["compression"] > 30
    assert rows["binary-0.5"]["weight_bits"] < rows["binary-0"]["weight_bits"]
    assert rows["binary-0.5"]["macs"] < rows["binary-0"]["macs"] and rows["binary-0.5"]["macs_reduction"] > 0
    assert rows["binary-0.5"]["bops"] > 0 and rows["float"]["bops"] == 0
    assert all(0 <= r["accuracy"] <= 1 for r in rows.values())
    assert "| binary-0.5 | 0.5 |" in (out / "results.md").read_text()
    model, ckpt = load_checkpoint(out / "binary-0.5.pt")
    assert ckpt["config"]["binary"] is True and ckpt["config"]["widths"] == [2, 4, 4]
    assert ckpt["config"]["inner"] == [2, 2, 4, 4, 4, 4] and model.stem.out_channels == 2
    assert all(set(np.unique(w)) <= {-1, 1} for w in binary_weights(model).values())


def test_compress_resumes_exactly_after_an_interruption(tmp_path, monkeypatch):
    """Stopped inside the activation-binarization stage, the run resumes with --resume: the
    finished stages are loaded, the stage in progress continues from its batch, and every
    model ends equal to the uninterrupted run's."""
    from hdlgen.nn import stages
    from hdlgen.nn.checkpoint import read_checkpoint

    data = tmp_path / "data"
    _write_dataset(data, "cifar10")

    def run(out, *extra):
        return compress_main(["resnet14", "--data", str(data), "--dataset", "cifar10", "--out", str(out),
                              "--config", json.dumps({"widths": [4, 8, 8]}), "--rates", "0.5",
                              "--epochs", "1,1,2", "--act-epochs", "2", "--checkpoint-minutes", "0",
                              "--settings", json.dumps({"batch_size": 16, "samples": 256, "calib_images": 16}),
                              *extra])

    assert run(tmp_path / "whole") == 0
    real = stages.StageStore.save_progress
    calls = []

    def save_then_stop(self, tag, model, position):
        real(self, tag, model, position)
        if tag == "binary-acts-0.5" and position["epoch"] == 1 and position["batch"] == 2:
            calls.append(position)
            raise KeyboardInterrupt

    monkeypatch.setattr(stages.StageStore, "save_progress", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut")
    assert calls
    monkeypatch.setattr(stages.StageStore, "save_progress", real)
    assert run(tmp_path / "cut") == 2    # a run is there: refused without --resume
    assert run(tmp_path / "cut", "--resume") == 0
    log = (tmp_path / "cut" / "log.txt").read_text()
    assert "float: finished in an earlier run, loaded" in log
    assert "binary-acts-0.5: resuming at epoch 2, batch 2" in log
    for tag in ("float", "float-pruned-0.5", "binary-acts-0.5", "binary-0.5"):
        a = read_checkpoint(tmp_path / "whole" / f"{tag}.pt")["state_dict"]
        b = read_checkpoint(tmp_path / "cut" / f"{tag}.pt")["state_dict"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), tag
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())["rows"]
    cut = json.loads((tmp_path / "cut" / "results.json").read_text())["rows"]
    assert [r["model"] for r in cut] == ["float", "float-pruned-0.5", "binary-acts-0.5", "binary-0.5"]
    assert [r["accuracy"] for r in cut] == [r["accuracy"] for r in whole]
    assert run(tmp_path / "nothing", "--resume") == 2


def test_activation_step_trains_float_weights():
    from hdlgen.nn.compress import set_weight_binarization

    conv = SignConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(conv.effective_weight(), torch.where(conv.weight >= 0, 1.0, -1.0))
    set_weight_binarization(torch.nn.Sequential(conv), False)
    assert torch.equal(conv.effective_weight(), conv.weight)
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    assert torch.allclose(conv(x), F.conv2d(padded, conv.weight))
    set_weight_binarization(torch.nn.Sequential(conv), True)
    assert torch.allclose(conv(x), F.conv2d(padded, torch.where(conv.weight >= 0, 1.0, -1.0)))
