"""Checkpoints: plain dicts written with ``torch.save`` and read with ``weights_only=True``.

Layout (version 1)::

    {"format": "hdlgen-checkpoint", "version": 1,
     "recipe": "mlp", "config": {...recipe options...},
     "state_dict": {...tensors...},
     "meta": {"dataset", "classes", "accuracy", "epochs", "command", "source_revision", ...},
     "train_state": {...}}          # optional: optimizer and schedule, for resuming

Only tensors, numbers, strings, lists, dicts, booleans and None are stored, so a checkpoint
loads on any torch that reads the zip format, without hdlgen's classes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import OrderedDict
from pathlib import Path

import torch

import hdlgen

from ..errors import HdlgenError
from .recipes import build_model

FORMAT = "hdlgen-checkpoint"
VERSION = 1


def source_revision() -> str:
    """``git describe`` of the hdlgen source tree, or "unknown"."""
    root = Path(hdlgen.__file__).resolve().parent.parent
    try:
        r = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root,
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def make_checkpoint(model, recipe: str, config: dict, meta: dict, train_state: dict | None = None) -> dict:
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "recipe": recipe,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


_PLAIN = (str, int, float, bool, type(None))


def check_plain(value, where="checkpoint"):
    """Raise TypeError unless ``value`` holds only what ``torch.load(weights_only=True)`` reads
    on every supported torch: dicts, lists, tuples, str, int, float, bool, None and tensors."""
    if type(value) in _PLAIN or type(value) is torch.Tensor or isinstance(value, torch.nn.Parameter):
        return
    if isinstance(value, dict) and type(value) in (dict, OrderedDict):
        for k, v in value.items():
            if type(k) not in _PLAIN:
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} is not plain")
            check_plain(v, f"{where}[{k!r}]")
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__name__}, which "
                    "torch.load(weights_only=True) cannot read")


def save_checkpoint(ckpt: dict, path, overwrite: bool = True) -> Path:
    """Write ``ckpt`` to ``path`` atomically (a temporary file in the same folder, renamed).

    With ``overwrite=False`` an existing file is an error.
    """
    path = Path(path)
    check_plain(ckpt)
    if not overwrite and path.exists():
        raise HdlgenError(f"{path} already exists; not overwriting it")
    if path.exists() and path.is_dir():
        raise HdlgenError(f"{path} is a directory, not a checkpoint file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        if not overwrite:
            # link() fails if the name appeared meanwhile: never replaces a file.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise HdlgenError(f"{path} already exists; not overwriting it") from None
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_checkpoint(path) -> dict:
    """Read and check a checkpoint file without building its model."""
    path = Path(path)
    if not path.exists():
        raise HdlgenError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise HdlgenError(f"checkpoint {path} is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise HdlgenError(f"{path} is not a readable PyTorch checkpoint (not a torch file, or truncated): "
                          f"{_load_error_detail(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise HdlgenError(f"{path} is not an hdlgen checkpoint (format {found!r}, expected {FORMAT!r})")
    if ckpt.get("version") != VERSION:
        raise HdlgenError(f"{path} has checkpoint version {ckpt.get('version')!r}; this hdlgen reads {VERSION}")
    for key, kind in (("recipe", str), ("config", dict), ("state_dict", dict), ("meta", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise HdlgenError(f"{path}: checkpoint entry {key!r} is missing or not a {kind.__name__}")
    for name, tensor in ckpt["state_dict"].items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise HdlgenError(f"{path}: tensor {name!r} holds {bad} non-finite value(s) (NaN or infinity)")
    return ckpt


def _load_error_detail(e: Exception) -> str:
    """The telling part of torch.load's error: the unpickler's complaint, or the first
    sentence of the message, without torch's advice about filing issues."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    for i, ln in enumerate(lines):
        if "Unpickler error:" in ln:
            rest = ln.split("Unpickler error:", 1)[1].strip() or (lines[i + 1] if i + 1 < len(lines) else "")
            text = f"unpickler error: {rest}" if rest else "its contents are not a pickled object"
            break
    text = text.split(". ")[0].strip()
    if len(text) < 12:
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text[:160]


def load_checkpoint(path, device: str = "cpu"):
    """``(model, ckpt)``: the checkpoint's network with its weights, in eval mode."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    try:
        model, _ = build_model(ckpt["recipe"], ckpt["config"])
    except HdlgenError as e:
        raise HdlgenError(f"{path}: {e}") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = " ".join(lines[1:3] if len(lines) > 1 else lines)[:300]
        raise HdlgenError(f"{path}: state_dict does not fit recipe {ckpt['recipe']!r} "
                          f"with config {ckpt['config']}: {detail}") from None
    model.to(device)
    model.eval()
    return model, ckpt
