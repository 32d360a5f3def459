"""The shipped model: its checkpoint loads, and on the shipped test images the golden IR
reproduces every hidden activation and class decision of the PyTorch integer path."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hdlgen.golden import run
from hdlgen.nn.checkpoint import load_checkpoint
from hdlgen.nn.export import export
from hdlgen.nn.evaluate import predict

MODEL = Path(__file__).resolve().parent.parent / "models" / "mlp-fashion"


@pytest.fixture(scope="module")
def shipped():
    model, ckpt = load_checkpoint(MODEL / "checkpoint.pt")
    with np.load(MODEL / "samples.npz", allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    return model, ckpt, x, y


def test_shipped_files(shipped):
    model, ckpt, x, y = shipped
    assert (MODEL / "checkpoint.pt").stat().st_size < 2_000_000
    assert x.dtype == np.uint8 and x.shape == (300, 28, 28, 1) and y.shape == (300,)
    meta = ckpt["meta"]
    assert meta["dataset"] == "fashion-mnist" and len(meta["classes"]) == 10
    assert ckpt["recipe"] == "mlp" and ckpt["config"]["hidden"] == [256, 256, 256]
    assert meta["accuracy"]["golden"] > 0.84
    assert "train_state" not in ckpt


def test_shipped_model_is_exact_on_samples(shipped):
    model, ckpt, x, y = shipped
    graph = export(model, "mlp-fashion", ckpt["meta"])
    golden = run(graph, x)
    acts = model.activations(torch.from_numpy(x))
    for i, a in enumerate(acts[:-1]):
        assert np.array_equal(golden[f"act{i}"], a.numpy().astype(np.int64)), f"act{i}"
    assert np.array_equal(golden["fc3"], acts[-1].numpy().astype(np.int64))
    pred = predict(model, x)
    assert np.array_equal(golden["cls"][:, 0], pred)
    assert (pred == y).mean() > 0.8
    assert (predict(model, x, float_reference=True) == y).mean() > 0.8
