"""Accuracy of a trained model on its dataset's test split: float reference, PyTorch integer
path and golden IR, and the number of images where golden and PyTorch disagree (must be 0)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..errors import HdlgenError
from ..golden import classify


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise HdlgenError("--device cuda: no CUDA device is available to this torch")
    if name not in ("cpu", "cuda"):
        raise HdlgenError(f"unknown device {name!r} (expected cpu or cuda)")
    return torch.device(name)


@torch.no_grad()
def scores(model, x, *, float_reference: bool = False, batch: int = 1000, device="cpu") -> np.ndarray:
    """Class scores of ``x`` (uint8 (N, H, W, C), NumPy or torch) in eval mode.

    The integer path (default) gives exact integer scores as float64; ``float_reference``
    gives the float32 path's scaled scores.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        with model.float_mode(float_reference):
            for i in range(0, len(x), batch):
                xb = torch.as_tensor(np.asarray(x[i:i + batch])).to(device)
                out.append(model(xb).double().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out)


def predict(model, x, *, float_reference: bool = False, batch: int = 1000, device="cpu") -> np.ndarray:
    """Class index per image (the first maximum on ties, as the IR's argmax)."""
    s = scores(model, x, float_reference=float_reference, batch=batch, device=device)
    return np.argmax(s, axis=1).astype(np.int64) if len(s) else np.zeros(0, np.int64)


def evaluate(model, graph, x, y, *, batch: int = 1000, device="cpu", progress=None, jobs: int = 1) -> dict:
    """Compare float, PyTorch integer and golden IR classification of ``x`` against ``y``.

    The golden model (NumPy integer arithmetic, the slow part) runs in ``jobs`` threads, one
    batch each, while the PyTorch paths run in the calling thread."""
    n = len(x)
    correct = {"float": 0, "integer": 0, "golden": 0}
    mismatches = 0
    start = time.monotonic()
    starts = list(range(0, n, batch))
    with ThreadPoolExecutor(max(1, int(jobs))) as pool:
        golden = [pool.submit(classify, graph, x[i:i + batch]) for i in starts]
        try:
            for i, pending in zip(starts, golden):
                xb, yb = x[i:i + batch], y[i:i + batch]
                pf = predict(model, xb, float_reference=True, batch=batch, device=device)
                pi = predict(model, xb, batch=batch, device=device)
                pg = pending.result()
                correct["float"] += int((pf == yb).sum())
                correct["integer"] += int((pi == yb).sum())
                correct["golden"] += int((pg == yb).sum())
                mismatches += int((pg != pi).sum())
                if progress:
                    progress(min(i + batch, n), n, time.monotonic() - start)
        finally:
            for pending in golden:
                pending.cancel()
    acc = {k: (v / n if n else float("nan")) for k, v in correct.items()}
    return {"count": n, "accuracy": acc, "correct": correct, "mismatches": mismatches}


def weight_bits(graph) -> int:
    """Total weight storage of the exported model in bits."""
    return graph.weight_bits()
