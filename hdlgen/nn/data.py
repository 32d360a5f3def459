"""Datasets as uint8 image arrays (N, H, W, C) and int64 labels.

``load_dataset(path, name, split)`` reads a user's copy of:

- ``fashion-mnist`` and ``mnist``: the idx files (``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``;
  gzipped or not, ``-idx`` or ``.idx`` in the name).
- ``cifar10``: ``cifar10_test.npz`` (``x`` (N, 32, 32, 3) uint8, ``y``) or the JPEG files
  ``cifar10_{train,test}_jpeg.npz`` (``jpeg`` bytes, ``offsets``, ``y``), decoded with Pillow.

``path`` is the folder holding the files (or its parent, when that holds a folder named after
the dataset).
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import HdlgenError

CLASSES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
SHAPES = {"fashion-mnist": (28, 28, 1), "mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
SPLITS = ("train", "test")
# Augmentation that keeps the label: (padding for a random crop, horizontal flips).
AUGMENT = {"fashion-mnist": (0, False), "mnist": (0, False), "cifar10": (4, True)}


def dataset_names() -> list:
    return sorted(CLASSES)


def _check_name(name):
    if name not in CLASSES:
        raise HdlgenError(f"unknown dataset {name!r} (known: {', '.join(dataset_names())})")


def dataset_classes(name: str) -> list:
    _check_name(name)
    return list(CLASSES[name])


def load_dataset(path, name: str, split: str):
    """``(x, y)``: x uint8 (N, H, W, C), y int64 (N,)."""
    _check_name(name)
    if split not in SPLITS:
        raise HdlgenError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    root = Path(path)
    if not root.is_dir():
        raise HdlgenError(f"dataset folder {root} does not exist (expected the {name} files there)")
    if name in ("fashion-mnist", "mnist"):
        return _load_idx_dataset(_dataset_dir(root, name, _idx_present), name, split)
    return _load_cifar10(_dataset_dir(root, name, _cifar_present), split)


def _dataset_dir(root: Path, name: str, present) -> Path:
    if not present(root) and (root / name).is_dir() and present(root / name):
        return root / name
    return root


# -- idx (MNIST, Fashion-MNIST) -------------------------------------------------------------

def _idx_candidates(root: Path, stem: str, kind: str):
    for sep in ("-", "."):
        base = f"{stem}{sep}{kind}-ubyte"
        for name in (base + ".gz", base):
            yield root / name


def _idx_present(root: Path) -> bool:
    return any(p.exists() for p in _idx_candidates(root, "t10k", "images-idx3"))


def _find_idx(root: Path, stem: str, kind: str) -> Path:
    for p in _idx_candidates(root, stem, kind):
        if p.is_file():
            return p
    raise HdlgenError(f"{root} has no {stem}-{kind}-ubyte[.gz] file")


def read_idx(path) -> np.ndarray:
    """Read one idx file of unsigned bytes (gzipped or not) into an array of its shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise HdlgenError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise HdlgenError(f"{path} is not an idx file (bad magic number)")
    if raw[2] != 0x08:
        raise HdlgenError(f"{path}: idx element type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise HdlgenError(f"{path}: truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise HdlgenError(f"{path}: idx header declares shape {shape} ({count} bytes) "
                          f"but the file holds {len(raw) - header} data bytes")
    return np.frombuffer(raw, np.uint8, count, header).reshape(shape).copy()


def _load_idx_dataset(root: Path, name: str, split: str):
    stem = "train" if split == "train" else "t10k"
    ipath, lpath = _find_idx(root, stem, "images-idx3"), _find_idx(root, stem, "labels-idx1")
    x, y = read_idx(ipath), read_idx(lpath)
    if x.ndim != 3 or x.shape[1:] != SHAPES[name][:2]:
        raise HdlgenError(f"{ipath}: expected images of shape (N, 28, 28), found {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise HdlgenError(f"{lpath}: expected {len(x)} labels (one per image), found shape {y.shape}")
    if len(y) and y.max() >= len(CLASSES[name]):
        raise HdlgenError(f"{lpath}: label {int(y.max())} is outside 0 .. {len(CLASSES[name]) - 1}")
    return np.ascontiguousarray(x[..., None]), y.astype(np.int64)


# -- CIFAR-10 (.npz) -----------------------------------------------------------------------

def _cifar_present(root: Path) -> bool:
    return any((root / f).is_file() for f in ("cifar10_test.npz", "cifar10_test_jpeg.npz",
                                               "cifar10_train_jpeg.npz", "cifar10_train.npz"))


def _open_npz(path: Path, keys):
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise HdlgenError(f"{path} lacks the arrays {missing} (has {sorted(f.files)}; "
                                  f"expected {', '.join(keys)})")
            return {k: f[k] for k in keys}
    except HdlgenError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise HdlgenError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from None


def _labels(path: Path, y, n: int):
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer):
        raise HdlgenError(f"{path}: 'y' must hold {n} integer labels, found {y.dtype} {y.shape}")
    if n and (y.min() < 0 or y.max() > 9):
        raise HdlgenError(f"{path}: labels must lie in 0 .. 9, found {y.min()} .. {y.max()}")
    return y.astype(np.int64)


def _load_cifar10(root: Path, split: str):
    plain, jpeg = root / f"cifar10_{split}.npz", root / f"cifar10_{split}_jpeg.npz"
    if plain.is_file():
        a = _open_npz(plain, ("x", "y"))
        x = a["x"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise HdlgenError(f"{plain}: 'x' must be uint8 (N, 32, 32, 3), found {x.dtype} {x.shape}")
        return np.ascontiguousarray(x), _labels(plain, a["y"], len(x))
    if jpeg.is_file():
        return _load_jpeg_npz(jpeg)
    raise HdlgenError(f"{root} has neither {plain.name} nor {jpeg.name} (the cifar10 {split} split)")


def _load_jpeg_npz(path: Path):
    a = _open_npz(path, ("jpeg", "offsets", "y"))
    data, offsets = a["jpeg"], a["offsets"]
    y = np.asarray(a["y"])
    if data.dtype != np.uint8 or data.ndim != 1:
        raise HdlgenError(f"{path}: 'jpeg' must be a 1-D uint8 array, found {data.dtype} {data.shape}")
    n = len(y)
    if offsets.ndim != 1 or len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(data) \
            or np.any(np.diff(offsets) <= 0):
        raise HdlgenError(f"{path}: 'offsets' must be {n + 1} increasing positions from 0 to {len(data)}")
    y = _labels(path, y, n)
    try:
        from PIL import Image
    except ImportError:
        raise HdlgenError(f"{path} holds JPEG images; decoding them needs Pillow (pip install pillow)") from None
    x = np.empty((n, 32, 32, 3), np.uint8)
    buf = data.tobytes()
    for i in range(n):
        try:
            img = np.asarray(Image.open(io.BytesIO(buf[offsets[i]:offsets[i + 1]])).convert("RGB"))
        except Exception as e:
            raise HdlgenError(f"{path}: image {i} is not a decodable JPEG ({e})") from None
        if img.shape != (32, 32, 3):
            raise HdlgenError(f"{path}: image {i} is {img.shape}, expected (32, 32, 3)")
        x[i] = img
    return x, y


# -- augmentation ---------------------------------------------------------------------------

def default_augmentation(name: str):
    """``(pad, flip)`` for training on ``name``: random crop with ``pad`` and horizontal flips."""
    _check_name(name)
    return AUGMENT[name]


def augment(x, generator, pad: int = 0, flip: bool = False):
    """Random crop (zero padding ``pad``) and horizontal flip of a torch batch (N, H, W, C)."""
    import torch

    if pad <= 0 and not flip:
        return x
    n, h, w, _ = x.shape
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(2), x)
    if pad > 0:
        padded = torch.zeros((n, h + 2 * pad, w + 2 * pad, x.shape[3]), dtype=x.dtype)
        padded[:, pad:pad + h, pad:pad + w] = x
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, :, None]
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, :]
        x = padded[torch.arange(n)[:, None, None], rows, cols]
    return x
