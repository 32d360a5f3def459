"""``hdlgen eval``: a checkpoint's float, PyTorch-integer and golden accuracy on a dataset's
test split, and whether the golden model and the PyTorch integer path agree on every image."""

from __future__ import annotations

import json
import os
import sys
import time

from .errors import HdlgenError
from .model import resolve_model
from .nn.checkpoint import load_checkpoint
from .nn.data import load_dataset
from .nn.evaluate import _device, evaluate, weight_bits
from .nn.export import export, graph_meta


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
    if len(x) == 0:
        raise HdlgenError(f"{args.data}: the {dataset} test split holds no images")
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
