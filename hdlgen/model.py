"""Finding and loading models: shipped names, checkpoints (.pt) and exported IR (.json).

A *model spec* on the command line is either the name of a model shipped in ``models/``
(a folder ``models/<name>/`` holding ``checkpoint.pt``) or a path to a checkpoint or to an
exported IR graph (``graph.json`` beside ``graph.npz``). Only checkpoints need torch.
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


def resolve_model(spec: str | None) -> Path:
    """The file a model spec names: a checkpoint ``.pt`` or an IR ``.json``."""
    spec = spec or DEFAULT_MODEL
    path = Path(spec)
    if path.suffix in (".pt", ".json") or os.sep in spec or path.exists():
        if path.is_dir() and (path / "checkpoint.pt").is_file():
            return path / "checkpoint.pt"
        if not path.is_file():
            raise HdlgenError(f"model file {path} does not exist")
        if path.suffix not in (".pt", ".json"):
            raise HdlgenError(f"model file {path}: expected a checkpoint (.pt) or an exported IR graph (.json)")
        return path
    ckpt = models_dir() / spec / "checkpoint.pt"
    if not ckpt.is_file():
        known = ", ".join(shipped_models()) or "none"
        raise HdlgenError(f"no model named {spec!r} (shipped models: {known}; or give a path to a .pt or .json)")
    return ckpt


@dataclass
class LoadedModel:
    name: str
    path: Path
    graph: object  # hdlgen.ir.Graph
    samples: tuple | None  # (x uint8 (N,H,W,C), y (N,)) shipped test images, when there are some


def load_samples(path: Path):
    """The shipped test images beside a checkpoint (``samples.npz``), or None."""
    f = path.parent / "samples.npz"
    if not f.is_file():
        return None
    with np.load(f, allow_pickle=False) as z:
        return z["x"], z["y"]


def load_graph(spec: str | None):
    """The integer IR graph of a model spec (exporting a checkpoint when needed)."""
    from .ir import Graph

    path = resolve_model(spec)
    if path.suffix == ".json":
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
    return LoadedModel(name=name, path=path, graph=graph, samples=load_samples(path))
