"""Finding and loading models: shipped names, checkpoints (.pt), exported IR (.json) and QONNX
models (.onnx, as Brevitas exports them).

A *model spec* on the command line is either the name of a model shipped in ``models/``
(a folder ``models/<name>/`` holding ``checkpoint.pt``) or a path to a checkpoint, to an
exported IR graph (``graph.json`` beside ``graph.npz``) or to a QONNX model. Only checkpoints
need torch; QONNX models need the onnx package.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HdlgenError

DEFAULT_MODEL = "resnet14-cifar10"


def models_dir() -> Path:
    return Path(os.environ.get("HDLGEN_MODELS") or Path(__file__).resolve().parent.parent / "models")


def shipped_models() -> list:
    """Names of the models shipped in ``models/``, sorted."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "checkpoint.pt").is_file())


MODEL_SUFFIXES = (".pt", ".json", ".onnx")


def resolve_model(spec: str | None) -> Path:
    """The file a model spec names: a checkpoint ``.pt``, an IR ``.json`` or a QONNX ``.onnx``."""
    spec = spec or DEFAULT_MODEL
    path = Path(spec)
    if path.suffix in MODEL_SUFFIXES or os.sep in spec or path.exists():
        if path.is_dir() and (path / "checkpoint.pt").is_file():
            return path / "checkpoint.pt"
        if not path.is_file():
            raise HdlgenError(f"model file {path} does not exist")
        if path.suffix not in MODEL_SUFFIXES:
            raise HdlgenError(f"model file {path}: expected a checkpoint (.pt), an exported IR graph (.json) "
                              "or a QONNX model (.onnx)")
        return path
    ckpt = models_dir() / spec / "checkpoint.pt"
    if not ckpt.is_file():
        known = ", ".join(shipped_models()) or "none"
        raise HdlgenError(f"no model named {spec!r} (shipped models: {known}; or give a path to a .pt, .json or .onnx)")
    return ckpt


@dataclass
class LoadedModel:
    name: str
    path: Path
    graph: object  # hdlgen.ir.Graph
    samples: tuple | None  # (x (N,H,W,C), y (N,)) shipped test images as graph inputs, when there are some


def load_samples(path: Path, graph):
    """The test images beside a model file (``samples.npz``) as the graph's input values, or None."""
    f = path.parent / "samples.npz"
    if not f.is_file():
        return None
    with np.load(f, allow_pickle=False) as z:
        x, y = z["x"], z["y"]
    return encode_pixels(graph, x), y


def encode_pixels(graph, x: np.ndarray) -> np.ndarray:
    """What the graph (and the accelerator) reads for uint8 pixels ``x`` (N, H, W, C): the pixels
    themselves, or, for an imported model whose first quantizer is not the identity on pixels,
    their codes ``graph.meta["input_map"][channel][pixel]``."""
    table = graph.meta.get("input_map")
    if table is None:
        return x
    table = np.asarray(table, dtype=np.uint8)  # (C, 256)
    return table[np.arange(table.shape[0]), x.astype(np.intp)]


def load_graph(spec: str | None):
    """The integer IR graph of a model spec (exporting a checkpoint when needed)."""
    from .ir import Graph

    path = resolve_model(spec)
    if path.suffix == ".onnx":
        from .qonnx import load_qonnx

        graph = load_qonnx(path)
        name = graph.name
    elif path.suffix == ".json":
        try:
            graph = Graph.load(path)
        except FileNotFoundError as e:
            raise HdlgenError(f"model {path}: missing {Path(e.filename).name} beside it") from None
        except (ValueError, KeyError, json.JSONDecodeError, OSError) as e:
            raise HdlgenError(f"model {path} is not a valid hdlgen IR graph: {e}") from None
        name = graph.name
    else:
        from .nn.export import export_checkpoint

        name = path.parent.name if path.name == "checkpoint.pt" else path.stem
        try:
            graph = export_checkpoint(path, name)
        except HdlgenError as e:
            if str(path) in str(e):
                raise
            raise HdlgenError(f"checkpoint {path}: {e}") from None
    return LoadedModel(name=name, path=path, graph=graph, samples=load_samples(path, graph))
