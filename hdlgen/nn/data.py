"""Datasets as uint8 image arrays (N, H, W, C) and int64 labels.

``load_dataset(path, name, split)`` reads a user's copy of:

- ``fashion-mnist`` and ``mnist``: the idx files (``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``;
  gzipped or not, ``-idx`` or ``.idx`` in the name).
- ``cifar10``: ``cifar10_{train,test}.npz`` (``x`` (N, 32, 32, 3) uint8, ``y``), the JPEG files
  ``cifar10_{train,test}_jpeg.npz`` (``jpeg`` bytes, ``offsets``, ``y``), decoded with Pillow,
  or the official python release ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``: pickled dicts with ``b'data'`` uint8 (N, 3072), channel planes R, G, B,
  and ``b'labels'``). The .npz files win when both are present.
- ``cifar100``: the official python release ``cifar-100-python/`` (``train``, ``test``, with
  ``b'data'`` as CIFAR-10 and ``b'fine_labels'``, 100 classes).
- ``svhn``: the official cropped-digit files ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB
  level-5 files with ``X`` uint8 (32, 32, 3, N) and ``y`` (N, 1), label 10 standing for the digit
  0), read by :func:`read_mat5` (no SciPy needed).

``path`` is the folder holding the files (or its parent, when that holds a folder named after
the dataset, or the official release folder).

Pickled CIFAR files are read by an unpickler that only admits dicts, lists, strings, numbers
and NumPy arrays, so a foreign pickle cannot run code.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
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
    "cifar100": [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
        "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
        "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
        "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
        "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
        "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
        "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
        "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"],
    "svhn": [str(i) for i in range(10)],
}
SHAPES = {"fashion-mnist": (28, 28, 1), "mnist": (28, 28, 1), "cifar10": (32, 32, 3),
          "cifar100": (32, 32, 3), "svhn": (32, 32, 3)}
SPLITS = ("train", "test")
# Augmentation that keeps the label: (padding for a random crop, horizontal flips).
# Digits (SVHN) are not flipped.
AUGMENT = {"fashion-mnist": (0, False), "mnist": (0, False), "cifar10": (4, True),
           "cifar100": (4, True), "svhn": (4, False)}
CIFAR10_DIR, CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


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
    if name == "cifar100":
        return _load_cifar100(_dataset_dir(root, name, _cifar100_present), split)
    if name == "svhn":
        return _load_svhn(_dataset_dir(root, name, _svhn_present), split)
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
                                               "cifar10_train_jpeg.npz", "cifar10_train.npz")) \
        or _cifar10_pickle_dir(root) is not None


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


def _labels(path: Path, y, n: int, classes: int = 10, what: str = "'y'"):
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer):
        raise HdlgenError(f"{path}: {what} must hold {n} integer labels, found {y.dtype} {y.shape}")
    if n and (y.min() < 0 or y.max() > classes - 1):
        raise HdlgenError(f"{path}: labels must lie in 0 .. {classes - 1}, found {y.min()} .. {y.max()}")
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
    pickles = _cifar10_pickle_dir(root)
    if pickles is not None:
        files = CIFAR10_TRAIN_BATCHES if split == "train" else ("test_batch",)
        return _load_cifar_pickles(pickles, files, b"labels", 10)
    raise HdlgenError(f"{root} has neither {plain.name} nor {jpeg.name} nor the official "
                      f"{CIFAR10_DIR}/ folder (the cifar10 {split} split)")


# -- CIFAR-10 / CIFAR-100 python pickles ---------------------------------------------------

def _cifar10_pickle_dir(root: Path):
    for d in (root / CIFAR10_DIR, root):
        if (d / "test_batch").is_file() or (d / "data_batch_1").is_file():
            return d
    return None


def _cifar100_present(root: Path) -> bool:
    return (root / CIFAR100_DIR).is_dir() or (root / "test").is_file() or (root / "train").is_file()


class _SafeUnpickler(pickle.Unpickler):
    """Admits only the globals that a pickled dict of NumPy arrays needs."""

    def find_class(self, module, name):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np.ndarray.__reduce__(np.zeros(0))[0]
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if name == "scalar" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_scalar
        if module == "_codecs" and name == "encode":
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a dataset file")


def _numpy_scalar(dtype, data=None):
    return np.frombuffer(data if isinstance(data, bytes) else bytes(data, "latin1"), dtype)[0]


def read_cifar_pickle(path) -> dict:
    """Read one python-release CIFAR batch file (a pickled dict with bytes keys)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise HdlgenError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    except Exception as e:
        raise HdlgenError(f"{path} is not a CIFAR python batch file (unpickling failed: "
                          f"{type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise HdlgenError(f"{path} is not a CIFAR python batch file (holds a {type(obj).__name__}, "
                          "expected a dict)")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _load_cifar_pickles(folder: Path, files, label_key: bytes, classes: int):
    xs, ys = [], []
    key = label_key.decode()
    for name in files:
        path = folder / name
        if not path.is_file():
            raise HdlgenError(f"{folder} lacks {name} (expected the official python release files "
                              f"{', '.join(files)})")
        d = read_cifar_pickle(path)
        for k in ("data", key):
            if k not in d:
                raise HdlgenError(f"{path} has no b'{k}' entry (has {sorted(map(str, d))})")
        x = np.asarray(d["data"])
        if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            raise HdlgenError(f"{path}: b'data' must be uint8 (N, 3072), found {x.dtype} {x.shape}")
        try:
            y = np.asarray(d[key], dtype=np.int64)
        except (TypeError, ValueError):
            raise HdlgenError(f"{path}: b'{key}' must be a list of integer labels") from None
        ys.append(_labels(path, y, len(x), classes, f"b'{key}'"))
        xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _load_cifar100(root: Path, split: str):
    folder = root / CIFAR100_DIR if (root / CIFAR100_DIR).is_dir() else root
    return _load_cifar_pickles(folder, (split,), b"fine_labels", 100)


# -- SVHN (MATLAB level-5 .mat) ------------------------------------------------------------

def _svhn_present(root: Path) -> bool:
    return (root / "test_32x32.mat").is_file() or (root / "train_32x32.mat").is_file()


def _load_svhn(root: Path, split: str):
    path = root / f"{split}_32x32.mat"
    if not path.is_file():
        raise HdlgenError(f"{root} has no {path.name} (the svhn {split} split, official format)")
    arrays = read_mat5(path, ("X", "y"))
    for k in ("X", "y"):
        if k not in arrays:
            raise HdlgenError(f"{path} has no variable {k!r} (has {sorted(arrays)})")
    x, y = arrays["X"], arrays["y"]
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise HdlgenError(f"{path}: X must be (32, 32, 3, N), found {x.shape}")
    n = x.shape[3]
    if x.dtype != np.uint8:
        if not np.all((x >= 0) & (x <= 255) & (x == np.round(x))):
            raise HdlgenError(f"{path}: X must hold pixel values 0 .. 255")
        x = x.astype(np.uint8)
    y = y.reshape(-1) if y.size == n and (y.ndim == 1 or 1 in y.shape) else y
    if y.ndim != 1 or len(y) != n:
        raise HdlgenError(f"{path}: y must hold {n} labels (shape (N, 1)), found {y.shape}")
    if n and (not np.all(y == np.round(y)) or y.min() < 1 or y.max() > 10):
        raise HdlgenError(f"{path}: labels must be integers 1 .. 10 (10 for the digit 0), "
                          f"found {y.min()} .. {y.max()}")
    y = y.astype(np.int64) % 10
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), y


_MI = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MX = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
MI_MATRIX, MI_COMPRESSED = 14, 15


def read_mat5(path, names=None) -> dict:
    """Numeric matrices of a MATLAB level-5 .mat file as NumPy arrays (MATLAB's shape, column-major
    data reordered). ``names`` limits which variables are decoded. Handles uncompressed and
    zlib-compressed (``miCOMPRESSED``) real numeric matrices; other variables are skipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise HdlgenError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(raw) < 128:
        raise HdlgenError(f"{path} is not a MATLAB .mat file (shorter than the 128-byte header)")
    if raw[:19] == b"MATLAB 7.3 MAT-file" or raw[:8] == b"\x89HDF\r\n\x1a\n":
        raise HdlgenError(f"{path} is a MATLAB 7.3 (HDF5) file; re-save it as a level-5 file (-v7)")
    endian = {b"IM": "<", b"MI": ">"}.get(raw[126:128])
    if endian is None or not raw[:6] == b"MATLAB":
        raise HdlgenError(f"{path} is not a MATLAB level-5 .mat file (bad header)")
    out = {}
    try:
        _mat5_elements(raw, 128, endian, names, out, path)
    except (struct.error, ValueError, IndexError, zlib.error) as e:
        raise HdlgenError(f"{path}: corrupt or truncated MATLAB file ({type(e).__name__}: {e})") from None
    return out


def _mat5_tag(buf, pos, endian):
    """``(type, nbytes, data_start, next_pos)`` of the data element at ``pos``."""
    kind, nbytes = struct.unpack_from(endian + "II", buf, pos)
    if kind >> 16:  # small data element: 2-byte size, 2-byte type, 4 bytes of data
        return kind & 0xFFFF, kind >> 16, pos + 4, pos + 8
    start = pos + 8
    if start + nbytes > len(buf):
        raise ValueError(f"element at byte {pos} runs past the end of the data")
    return kind, nbytes, start, start + nbytes + (-nbytes % 8 if kind != MI_COMPRESSED else 0)


def _mat5_elements(buf, pos, endian, names, out, path):
    while pos + 8 <= len(buf):
        kind, nbytes, start, nxt = _mat5_tag(buf, pos, endian)
        if kind == MI_COMPRESSED:
            inner = zlib.decompress(bytes(buf[start:start + nbytes]))
            _mat5_elements(inner, 0, endian, names, out, path)
        elif kind == MI_MATRIX and nbytes:
            _mat5_matrix(buf, start, start + nbytes, endian, names, out)
        pos = nxt


def _mat5_data(buf, pos, endian):
    kind, nbytes, start, nxt = _mat5_tag(buf, pos, endian)
    if kind not in _MI:
        raise ValueError(f"unsupported MATLAB data type {kind} at byte {pos}")
    dt = np.dtype(_MI[kind]).newbyteorder(endian)
    return np.frombuffer(buf, dt, nbytes // dt.itemsize, start), nxt


def _mat5_matrix(buf, pos, end, endian, names, out):
    flags, pos = _mat5_data(buf, pos, endian)
    mclass, complex_ = int(flags[0]) & 0xFF, bool(int(flags[0]) & 0x800)
    if mclass not in _MX or complex_:
        return  # cells, structs, sparse, char and complex arrays are not datasets' pixels
    dims, pos = _mat5_data(buf, pos, endian)
    kind, nbytes, start, pos = _mat5_tag(buf, pos, endian)
    name = bytes(buf[start:start + nbytes]).decode("latin1")
    if names is not None and name not in names:
        return
    values, pos = _mat5_data(buf, pos, endian)
    shape = tuple(int(d) for d in dims)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"variable {name!r} declares shape {shape} but holds {values.size} values")
    out[name] = values.astype(np.dtype(_MX[mclass]).newbyteorder("="), copy=True).reshape(shape, order="F")


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
    """Random crop (zero padding ``pad``) and horizontal flip of a torch batch (N, H, W, C) on
    any device. The random numbers come from the CPU ``generator``, so a batch is augmented
    alike on every device and in every process that shares the generator's state."""
    import torch

    if pad <= 0 and not flip:
        return x
    n, h, w, _ = x.shape
    dev = x.device
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(dev)
        x = torch.where(mask[:, None, None, None], x.flip(2), x)
    if pad > 0:
        padded = torch.zeros((n, h + 2 * pad, w + 2 * pad, x.shape[3]), dtype=x.dtype, device=dev)
        padded[:, pad:pad + h, pad:pad + w] = x
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
        rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])[:, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])[:, None, :]
        x = padded[torch.arange(n, device=dev)[:, None, None], rows, cols]
    return x
