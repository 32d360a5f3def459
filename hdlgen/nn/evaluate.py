"""Accuracy of a trained model on its dataset's test split: float reference, PyTorch integer
path and golden IR, and the number of images where golden and PyTorch disagree (must be 0)."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..errors import HdlgenError
from ..golden import classify
from .data import load_dataset


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


def add_eval_arguments(p):
    p.add_argument("--model", default=None, help="shipped model name or checkpoint path (default mlp-fashion)")
    p.add_argument("--data", required=True, help="folder holding the dataset files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="cpu", help="cpu or cuda (PyTorch paths only)")
    p.add_argument("--jobs", type=int, default=None,
                   help="threads running the golden model (default: the CPU count, at most 8)")
    return p


def cli_eval(args) -> int:
    from ..model import resolve_model
    from .checkpoint import load_checkpoint
    from .export import export, graph_meta

    device = _device(getattr(args, "device", "cpu") or "cpu")
    batch = int(getattr(args, "batch_size", None) or 1000)
    if batch < 1:
        raise HdlgenError(f"--batch-size must be positive, not {batch}")
    jobs = getattr(args, "jobs", None)
    jobs = min(8, os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise HdlgenError(f"--jobs must be positive, not {jobs}")
    path = resolve_model(args.model)
    if path.suffix != ".pt":
        raise HdlgenError(f"eval needs a checkpoint (.pt) to compare the PyTorch paths, not {path}")
    model, ckpt = load_checkpoint(path, device=str(device))
    meta = ckpt["meta"]
    dataset = meta.get("dataset")
    if not dataset:
        raise HdlgenError(f"{path}: checkpoint metadata names no dataset")
    name = path.parent.name if path.name == "checkpoint.pt" else path.stem
    graph = export(model, name, graph_meta(ckpt))
    x, y = load_dataset(args.data, dataset, "test")
    if args.limit is not None:
        if args.limit < 1:
            raise HdlgenError(f"--limit must be positive, not {args.limit}")
        x, y = x[:args.limit], y[:args.limit]
    if tuple(x.shape[1:]) != graph.input_type.shape:
        raise HdlgenError(f"{dataset} images are {x.shape[1:]} but model {name} takes {graph.input_type.shape}")

    def progress(done, total, seconds):
        if total > batch:
            print(f"eval {name}: {done}/{total} images ({seconds:.1f} s)", file=sys.stderr, flush=True)

    t0 = time.monotonic()
    result = evaluate(model, graph, x, y, batch=batch, device=device, progress=progress, jobs=jobs)
    result.update({"model": name, "checkpoint": str(path), "dataset": dataset,
                   "weight_bits": weight_bits(graph), "seconds": round(time.monotonic() - t0, 1)})
    acc = result["accuracy"]
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"model            {name} ({path})")
        print(f"dataset          {dataset} test split, {result['count']} images")
        print(f"weights          {result['weight_bits']:,} bits = {result['weight_bits'] / 1e6:.3f} Mb")
        print(f"float accuracy   {100 * acc['float']:.2f}%  (fp32 BatchNorm + sign)")
        print(f"integer accuracy {100 * acc['integer']:.2f}%  (PyTorch integer path)")
        print(f"golden accuracy  {100 * acc['golden']:.2f}%  (integer IR, golden model)")
        print(f"golden/PyTorch class mismatches: {result['mismatches']}")
        print(f"time             {result['seconds']:.1f} s")
    if result["mismatches"]:
        print(f"error: golden IR and PyTorch integer path disagree on {result['mismatches']} images",
              file=sys.stderr)
        return 1
    return 0
