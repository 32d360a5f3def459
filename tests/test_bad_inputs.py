"""Catalogue of bad inputs: each one must end ``python -m hdlgen`` with one line on stderr,
``error: ...`` naming the problem (the file, layer or value), a non-zero exit status, no
traceback, and no change to the files the user already had."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdlgen.fuzz import random_graph
from hdlgen.ir import Graph, TensorType, uint
from hdlgen.model import models_dir

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = models_dir() / "mlp-fashion" / "checkpoint.pt"


def _ir(tmp, name="net.json", **kw):
    g = random_graph(np.random.default_rng(0), shape=(4, 3, 1), hidden=(12, 8), classes=5, **kw)
    g.meta["dataset"] = "fashion-mnist"
    g.save(tmp / Path(name).with_suffix(""))
    return tmp / name


def _ir_json(tmp, edit, name="edited.json"):
    """A valid IR file (graph.json + graph.npz) whose JSON ``edit`` changes."""
    src = _ir(tmp, "base.json")
    data = json.loads(src.read_text())
    edit(data)
    (tmp / name).write_text(json.dumps(data))
    (tmp / name).with_suffix(".npz").write_bytes(src.with_suffix(".npz").read_bytes())
    return tmp / name


def _int4_weights(tmp):
    g = Graph("int4net", "image", TensorType((2, 2, 1), uint(8)))
    g.add("flat", "flatten", "image")
    g.add("fc0", "dense", "flat", {"weight_dtype": "int4"}, {"weight": np.arange(-8, 8, dtype=np.int8).reshape(4, 4)})
    g.add("act0", "threshold", "fc0", {"out": "bipolar"}, {"thresholds": np.zeros((4, 1), np.int64)})
    g.add("fcout", "dense", "act0", {"weight_dtype": "bipolar"}, {"weight": np.ones((3, 4), np.int8)})
    g.add("cls", "argmax", "fcout")
    g.save(tmp / "int4net")
    return tmp / "int4net.json"


def _bipolar_with_other_values(tmp):
    src = _ir(tmp, "pm.json")
    import zipfile
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(src.with_suffix(".npz")) as zin, zipfile.ZipFile(buf, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "fc1/weight.npy":
                arr = np.load(io.BytesIO(data))
                arr[0, 0] = 3
                b = io.BytesIO()
                np.save(b, arr)
                data = b.getvalue()
            zout.writestr(item, data)
    src.with_suffix(".npz").write_bytes(buf.getvalue())
    return src


def _truncated_checkpoint(tmp):
    data = CHECKPOINT.read_bytes()
    (tmp / "half.pt").write_bytes(data[: len(data) // 2])
    return tmp / "half.pt"


def _foreign_checkpoint(tmp):
    import torch
    torch.save({"model": "not ours", "weights": torch.zeros(3)}, tmp / "foreign.pt")
    return tmp / "foreign.pt"


RECIPE = '''
from torch import nn
from hdlgen.nn.layers import BinaryDense, BinaryNet, Flatten, InputQuant
DEFAULTS = {}
def build():
    return BinaryNet(InputQuant((4, 4, 1)), Flatten(), BinaryDense(16, 8), nn.ReLU(),
                     BinaryDense(8, 3, activation=False))
'''


def _unsupported_layer_checkpoint(tmp):
    import torch
    recipes = tmp / "recipes"
    recipes.mkdir()
    (recipes / "relunet.py").write_text(RECIPE)
    os.environ["HDLGEN_MODELS"] = str(recipes)
    try:
        from hdlgen.nn.checkpoint import make_checkpoint, save_checkpoint
        from hdlgen.nn.recipes import build_model
        model, config = build_model("relunet", {})
        save_checkpoint(make_checkpoint(model, "relunet", config, {"dataset": "mnist"}), tmp / "relunet.pt")
    finally:
        del os.environ["HDLGEN_MODELS"]
    torch.manual_seed(0)
    return tmp / "relunet.pt", {"HDLGEN_MODELS": str(recipes)}


def _folding(tmp, data, name="folding.json"):
    (tmp / name).write_text(data if isinstance(data, str) else json.dumps(data))
    return tmp / name


GOOD_FOLDING = {"in_lanes": 2, "layers": {"fc0": {"pe": 3, "simd": 4}, "fc1": {"pe": 2, "simd": 6},
                                          "fcout": {"pe": 5, "simd": 8}}}


def _huge(tmp):
    """A dense layer of 1024 x 1024 uint8 inputs, fully unrolled: far more LUTs than any board."""
    rng = np.random.default_rng(1)
    g = Graph("huge", "image", TensorType((16, 16, 4), uint(8)))
    g.add("flat", "flatten", "image")
    g.add("fc0", "dense", "flat", {"weight_dtype": "bipolar"},
          {"weight": rng.choice(np.array([-1, 1], np.int8), (1024, 1024))})
    g.add("act0", "threshold", "fc0", {"out": "bipolar"}, {"thresholds": np.zeros((1024, 1), np.int64)})
    g.add("fcout", "dense", "act0", {"weight_dtype": "bipolar"},
          {"weight": rng.choice(np.array([-1, 1], np.int8), (10, 1024))})
    g.add("cls", "argmax", "fcout")
    g.save(tmp / "huge")
    fold = _folding(tmp, {"in_lanes": 16, "layers": {"fc0": {"pe": 1024, "simd": 1024},
                                                     "fcout": {"pe": 1, "simd": 1}}}, "unrolled.json")
    return tmp / "huge.json", fold


def _idx_garbage(tmp):
    d = tmp / "fmnist"
    d.mkdir()
    (d / "t10k-images-idx3-ubyte").write_bytes(b"\x12\x34garbage" * 10)
    (d / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    return d


def _foreign_out(tmp):
    out = tmp / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    return out


def _file_as_out(tmp):
    (tmp / "notes.txt").write_text("precious")
    return tmp / "notes.txt"


BUILD = ["build", "--board", "kc705", "--no-synth"]


def _nan_checkpoint(tmp):
    import torch

    ckpt = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and v.dim() == 2)
    ckpt["state_dict"][name] = torch.full_like(ckpt["state_dict"][name], float("nan"))
    torch.save(ckpt, tmp / "nan.pt")
    return tmp / "nan.pt", name


def _earlier_build(tmp):
    out = tmp / "earlier"
    subprocess.run([sys.executable, "-m", "hdlgen", *BUILD, "--model", str(_ir(tmp, "old.json")), "--out", str(out)],
                   check=True, capture_output=True, cwd=tmp)
    return out

# name -> (setup(tmp) -> (argv, extra env), words the error line must contain)
CASES = {
    "unknown board": (lambda t: (["build", "--board", "de10nano", "--no-synth"], {}), ["de10nano", "kc705"]),
    "unknown model name": (lambda t: (BUILD + ["--model", "resnet9000"], {}), ["resnet9000"]),
    "missing checkpoint": (lambda t: (BUILD + ["--model", str(t / "gone.pt")], {}), ["gone.pt", "does not exist"]),
    "corrupt checkpoint": (lambda t: ((t / "junk.pt").write_bytes(os.urandom(3000)) and
                                      BUILD + ["--model", str(t / "junk.pt")], {}), ["junk.pt"]),
    "truncated checkpoint": (lambda t: (BUILD + ["--model", str(_truncated_checkpoint(t))], {}),
                             ["half.pt", "truncated"]),
    "checkpoint of another tool": (lambda t: (BUILD + ["--model", str(_foreign_checkpoint(t))], {}),
                                   ["foreign.pt", "not an hdlgen checkpoint"]),
    "checkpoint with an unsupported layer": (
        lambda t: (lambda p, env: (BUILD + ["--model", str(p)], env))(*_unsupported_layer_checkpoint(t)),
        ["relunet.pt", "layers.3", "ReLU"]),
    "IR graph with an unknown op": (
        lambda t: (BUILD + ["--model", str(_ir_json(t, lambda d: d["nodes"][1].update(op="avgpool")))], {}),
        ["edited.json", "avgpool"]),
    "IR graph without its .npz": (
        lambda t: (BUILD + ["--model", str(_ir(t).with_suffix(".npz").unlink() or t / "net.json")], {}),
        ["net.json", "net.npz"]),
    "IR file that is not JSON": (
        lambda t: ((t / "broken.json").write_text("{\"format\": \"hdlgen-ir\", ") and
                   BUILD + ["--model", str(t / "broken.json")], {}), ["broken.json"]),
    "non-binary weights": (lambda t: (BUILD + ["--model", str(_int4_weights(t))], {}), ["fc0", "int4", "binary"]),
    "bipolar weights that are not +-1": (
        lambda t: (BUILD + ["--model", str(_bipolar_with_other_values(t))], {}), ["fc1", "bipolar"]),
    "folding that does not divide a layer": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--folding", str(_folding(
            t, {**GOOD_FOLDING, "layers": {**GOOD_FOLDING["layers"], "fc1": {"pe": 5, "simd": 6}}}))], {}),
        ["fc1", "PE 5", "8 outputs"]),
    "folding naming a layer the model lacks": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--folding", str(_folding(
            t, {**GOOD_FOLDING, "layers": {**GOOD_FOLDING["layers"], "conv7": {"pe": 1, "simd": 1}}}))], {}),
        ["conv7"]),
    "folding file that is not JSON": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--folding", str(_folding(t, "{pe: 4"))], {}),
        ["folding.json", "JSON"]),
    "missing folding file": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--folding", str(t / "nofold.json")], {}), ["nofold.json"]),
    "input lanes that do not divide the image": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--folding", str(_folding(t, {**GOOD_FOLDING, "in_lanes": 5}))],
                   {}), ["lanes 5", "12"]),
    "design that does not fit the board": (
        lambda t: (lambda m, f: (["build", "--board", "kc705", "--model", str(m), "--folding", str(f)], {}))(*_huge(t)),
        ["does not fit kc705", "LUT", "203,800", "fc0"]),
    "impossible frame rate": (lambda t: (BUILD + ["--model", str(_ir(t)), "--fps", "1e12"], {}), ["--fps"]),
    "negative clock": (lambda t: (BUILD + ["--model", str(_ir(t)), "--clock-mhz", "-5"], {}), ["--clock-mhz", "-5"]),
    "missing dataset directory": (
        lambda t: (["sim", "--model", str(_ir(t)), "--data", str(t / "no-data"), "--images", "4", "--work", str(t / "w")], {}),
        ["no-data", "does not exist"]),
    "dataset directory without the files": (
        lambda t: ((t / "empty").mkdir() or ["sim", "--model", str(_ir(t)), "--data", str(t / "empty"), "--images", "4",
                                             "--work", str(t / "w")], {}), ["empty", "t10k"]),
    "malformed dataset file": (
        lambda t: (["sim", "--model", str(_ir(t)), "--data", str(_idx_garbage(t)), "--images", "4", "--work", str(t / "w")], {}),
        ["t10k-images-idx3-ubyte", "idx"]),
    "output directory holding other files": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--out", str(_foreign_out(t))], {}), ["thesis", "--force"]),
    "checkpoint with NaN weights": (lambda t: (BUILD + ["--model", str(_nan_checkpoint(t)[0])], {}),
                                    ["nan.pt", "non-finite"]),
    "frame rate that is not a number": (lambda t: (BUILD + ["--model", str(_ir(t)), "--fps", "nan"], {}),
                                        ["--fps", "nan"]),
    "output path below a file": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--out", str(_file_as_out(t) / "sub")], {}),
        ["notes.txt", "is a file"]),
    "impossible clock over an earlier build": (
        lambda t: (BUILD + ["--model", str(_ir(t)), "--clock-mhz", "5000", "--out", str(_earlier_build(t))], {}),
        ["5000 MHz"]),
    "output path that is a file": (lambda t: (BUILD + ["--model", str(_ir(t)), "--out", str(_file_as_out(t))], {}), ["notes.txt"]),
}


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line(case, tmp_path):
    setup, words = CASES[case]
    argv, env = setup(tmp_path)
    if "--out" not in argv and argv[0] == "build":
        argv = argv + ["--out", str(tmp_path / "out")]
    before = _snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "hdlgen", *argv], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, **env}, timeout=300)
    assert r.returncode != 0, f"{case}: exit 0\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], f"{case}: {w!r} not in {lines[0]!r}"
    after = _snapshot(tmp_path)
    changed = [p for p in before if after.get(p) != before[p]]
    assert not changed, f"{case}: the user's files {changed} changed"


def test_catalogue_has_enough_cases():
    assert len(CASES) >= 10
