"""Checkpoints: round trip, atomic saving, and one clear error per kind of bad file."""

import os

import pytest
import torch

from hdlgen.errors import HdlgenError
from hdlgen.nn.checkpoint import load_checkpoint, make_checkpoint, read_checkpoint, save_checkpoint
from hdlgen.nn.recipes import build_model, known_recipes, load_recipe

CONFIG = {"input_shape": [8, 8, 1], "hidden": [16, 12], "classes": 5}


def small_ckpt():
    torch.manual_seed(0)
    model, config = build_model("mlp", CONFIG)
    model.train()
    model(torch.randint(0, 256, (10, 8, 8, 1), dtype=torch.uint8))
    return model, make_checkpoint(model, "mlp", config, {"dataset": "mnist", "classes": list("abcde")})


def test_round_trip(tmp_path):
    model, ckpt = small_ckpt()
    path = save_checkpoint(ckpt, tmp_path / "sub" / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "hdlgen-checkpoint" and raw["version"] == 1 and raw["config"] == CONFIG
    loaded, back = load_checkpoint(path)
    assert not loaded.training
    assert back["meta"]["classes"] == list("abcde")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like a file opened for writing


def test_no_silent_overwrite(tmp_path):
    _, ckpt = small_ckpt()
    path = save_checkpoint(ckpt, tmp_path / "m.pt", overwrite=False)
    before = path.read_bytes()
    ckpt["meta"]["dataset"] = "other"
    with pytest.raises(HdlgenError, match="already exists"):
        save_checkpoint(ckpt, path, overwrite=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    save_checkpoint(ckpt, path)
    assert read_checkpoint(path)["meta"]["dataset"] == "other"


def test_only_plain_values_are_saved(tmp_path):
    import numpy as np

    _, ckpt = small_ckpt()
    ckpt["meta"]["accuracy"] = np.float64(0.5)
    with pytest.raises(TypeError, match=r"\['meta'\]\['accuracy'\] is a numpy.float64"):
        save_checkpoint(ckpt, tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())


def test_checkpoint_errors(tmp_path):
    _, ckpt = small_ckpt()
    good = save_checkpoint(ckpt, tmp_path / "good.pt")

    with pytest.raises(HdlgenError, match=r"missing\.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")

    p = tmp_path / "text.pt"
    p.write_text("hello, not a checkpoint\n")
    with pytest.raises(HdlgenError, match=r"text\.pt is not a readable PyTorch checkpoint"):
        load_checkpoint(p)

    p = tmp_path / "trunc.pt"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(HdlgenError, match=r"trunc\.pt is not a readable PyTorch checkpoint"):
        load_checkpoint(p)

    p = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(3)}, p)
    with pytest.raises(HdlgenError, match=r"plain\.pt is not an hdlgen checkpoint"):
        load_checkpoint(p)

    p = tmp_path / "pickled.pt"
    torch.save(dict(ckpt, meta={"when": __import__("datetime").date(2024, 1, 1)}), p)
    with pytest.raises(HdlgenError, match=r"pickled\.pt is not a readable.*datetime"):
        load_checkpoint(p)

    p = tmp_path / "version.pt"
    torch.save(dict(ckpt, version=7), p)
    with pytest.raises(HdlgenError, match=r"version\.pt has checkpoint version 7"):
        load_checkpoint(p)

    p = tmp_path / "recipe.pt"
    torch.save(dict(ckpt, recipe="nosuchnet"), p)
    with pytest.raises(HdlgenError, match=r"recipe\.pt: unknown recipe 'nosuchnet'.*mlp"):
        load_checkpoint(p)

    p = tmp_path / "shape.pt"
    torch.save(dict(ckpt, config=dict(CONFIG, hidden=[16, 13])), p)
    with pytest.raises(HdlgenError, match=r"shape\.pt: state_dict does not fit recipe 'mlp'"):
        load_checkpoint(p)

    p = tmp_path / "keys.pt"
    sd = dict(ckpt["state_dict"])
    sd.pop("layers.2.bn.running_var")
    torch.save(dict(ckpt, state_dict=sd), p)
    with pytest.raises(HdlgenError, match=r"keys\.pt: state_dict does not fit.*running_var"):
        load_checkpoint(p)

    p = tmp_path / "option.pt"
    torch.save(dict(ckpt, config=dict(CONFIG, depth=3)), p)
    with pytest.raises(HdlgenError, match=r"option\.pt: recipe 'mlp' has no option 'depth'"):
        load_checkpoint(p)

    with pytest.raises(HdlgenError, match="is not a file"):
        load_checkpoint(tmp_path)


def test_recipes(tmp_path, monkeypatch):
    assert "mlp" in known_recipes()
    assert load_recipe("mlp").DEFAULTS["hidden"] == [256, 256, 256]
    with pytest.raises(HdlgenError, match=r"unknown recipe 'nope'.*known recipes.*mlp"):
        load_recipe("nope")
    (tmp_path / "tiny.py").write_text(
        "from hdlgen.nn.layers import *\n"
        "DEFAULTS = {'n': 3}\n"
        "def build(n):\n"
        "    return BinaryNet(InputQuant((1, 1, 2)), Flatten(), BinaryDense(2, n, activation=False))\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.setenv("HDLGEN_MODELS", str(tmp_path))
    assert known_recipes() == ["broken", "tiny"]
    model, config = build_model("tiny", {"n": 4})
    assert config == {"n": 4} and model.dense_layers()[0].out_features == 4
    with pytest.raises(HdlgenError, match=r"broken\.py failed to import: RuntimeError: boom"):
        load_recipe("broken")
    with pytest.raises(HdlgenError, match="unknown recipe 'mlp'"):
        load_recipe("mlp")
