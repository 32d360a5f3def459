"""`hdlgen predict`: labels of the golden model for images in an .npz file; bad input is one error line."""

import json

import numpy as np
import pytest

from hdlgen.cli import main
from hdlgen.golden import classify
from hdlgen.ir import Graph, TensorType, uint


@pytest.fixture()
def model(tmp_path):
    """A tiny IR graph reading 4x4 one-channel images."""
    g = Graph("tiny", "image", TensorType((4, 4, 1), uint(8)))
    g.add("flatten", "flatten", "image")
    w = np.where(np.random.default_rng(0).random((3, 16)) < 0.5, -1, 1).astype(np.int8)
    g.add("fc0", "dense", "flatten", {"weight_dtype": "bipolar"}, {"weight": w})
    g.add("cls", "argmax", "fc0")
    g.save(tmp_path / "graph")
    return g, str(tmp_path / "graph.json")


def _run(capsys, *argv):
    rc = main(["predict", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_labels_for_nhwc_and_nhw_images(model, tmp_path, capsys):
    g, path = model
    x = np.random.default_rng(1).integers(0, 256, (6, 4, 4), dtype=np.uint8)
    want = classify(g, x[..., None]).tolist()
    np.savez(tmp_path / "nhw.npz", x=x)
    np.savez(tmp_path / "nhwc.npz", x=x[..., None])
    rc, out, _ = _run(capsys, "--model", path, "--images", str(tmp_path / "nhw.npz"), "--json")
    assert rc == 0 and json.loads(out) == {"labels": want}
    rc, out, _ = _run(capsys, "--model", path, "--images", str(tmp_path / "nhwc.npz"))
    assert rc == 0 and [int(v) for v in out.split()] == want


@pytest.mark.parametrize("case, words", [
    ("missing", ["does not exist"]),
    ("not-npz", ["not a readable .npz"]),
    ("no-x", ["no array 'x'", "images"]),
    ("float", ["dtype float32", "uint8"]),
    ("shape", ["shape (2, 5, 4)", "N x 4 x 4 x 1"]),
])
def test_bad_images_are_one_error_line(model, tmp_path, capsys, case, words):
    _, path = model
    f = tmp_path / "imgs.npz"
    if case == "not-npz":
        f.write_text("hello")
    elif case == "no-x":
        np.savez(f, images=np.zeros((1, 4, 4), np.uint8))
    elif case == "float":
        np.savez(f, x=np.zeros((1, 4, 4), np.float32))
    elif case == "shape":
        np.savez(f, x=np.zeros((2, 5, 4), np.uint8))
    rc, out, err = _run(capsys, "--model", path, "--images", str(f))
    assert rc == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and all(w in lines[0] for w in words), err
