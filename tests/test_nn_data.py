"""Dataset loaders on small files written in the official formats, and their errors."""

import gzip
import io
import struct

import numpy as np
import pytest
import torch

from hdlgen.errors import HdlgenError
from hdlgen.nn.data import augment, dataset_classes, default_augmentation, load_dataset, read_idx


def idx_bytes(a):
    a = np.asarray(a, np.uint8)
    return struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_idx_dataset(root, n_train=30, n_test=12, gz=True, sep="-", seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{stem}{sep}{kind}-ubyte" + (".gz" if gz else "")
            raw = idx_bytes(arr)
            (root / name).write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
        data[stem] = (x, y)
    return data


@pytest.mark.parametrize("gz,sep", [(True, "-"), (False, "-"), (False, ".")])
def test_idx_loader(tmp_path, gz, sep):
    data = write_idx_dataset(tmp_path / "fm", gz=gz, sep=sep)
    x, y = load_dataset(tmp_path / "fm", "fashion-mnist", "test")
    assert x.dtype == np.uint8 and x.shape == (12, 28, 28, 1) and y.dtype == np.int64
    assert np.array_equal(x[..., 0], data["t10k"][0]) and np.array_equal(y, data["t10k"][1])
    x, y = load_dataset(tmp_path / "fm", "mnist", "train")
    assert x.shape == (30, 28, 28, 1) and np.array_equal(y, data["train"][1])


def test_idx_loader_finds_named_subfolder(tmp_path):
    write_idx_dataset(tmp_path / "fashion-mnist")
    x, _ = load_dataset(tmp_path, "fashion-mnist", "test")
    assert len(x) == 12


def test_idx_errors(tmp_path):
    root = tmp_path / "d"
    with pytest.raises(HdlgenError, match="does not exist"):
        load_dataset(root, "mnist", "test")
    root.mkdir()
    with pytest.raises(HdlgenError, match="t10k-images-idx3-ubyte"):
        load_dataset(root, "mnist", "test")
    write_idx_dataset(root, gz=False)
    with pytest.raises(HdlgenError, match="split"):
        load_dataset(root, "mnist", "validation")
    with pytest.raises(HdlgenError, match="unknown dataset 'svhn2'"):
        load_dataset(root, "svhn2", "test")
    imgs = root / "t10k-images-idx3-ubyte"
    good = imgs.read_bytes()
    imgs.write_bytes(good[:-5])
    with pytest.raises(HdlgenError, match=r"t10k-images-idx3-ubyte: idx header declares"):
        load_dataset(root, "mnist", "test")
    imgs.write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(HdlgenError, match="bad magic"):
        load_dataset(root, "mnist", "test")
    imgs.write_bytes(good)
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5)))
    with pytest.raises(HdlgenError, match="expected 12 labels"):
        load_dataset(root, "mnist", "test")
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(12, 10)))
    with pytest.raises(HdlgenError, match="label 10"):
        load_dataset(root, "mnist", "test")


def test_truncated_gzip(tmp_path):
    write_idx_dataset(tmp_path)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(HdlgenError, match="cannot read"):
        read_idx(p)


def test_cifar10_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 9).astype(np.uint8)
    np.savez(tmp_path / "cifar10_test.npz", x=x, y=y)
    gx, gy = load_dataset(tmp_path, "cifar10", "test")
    assert np.array_equal(gx, x) and np.array_equal(gy, y) and gy.dtype == np.int64
    with pytest.raises(HdlgenError, match="cifar10_train_jpeg.npz"):
        load_dataset(tmp_path, "cifar10", "train")
    np.savez(tmp_path / "cifar10_test.npz", x=x[:, :16], y=y)
    with pytest.raises(HdlgenError, match=r"'x' must be uint8 \(N, 32, 32, 3\)"):
        load_dataset(tmp_path, "cifar10", "test")
    np.savez(tmp_path / "cifar10_test.npz", images=x, y=y)
    with pytest.raises(HdlgenError, match=r"lacks the arrays \['x'\]"):
        load_dataset(tmp_path, "cifar10", "test")
    (tmp_path / "cifar10_test.npz").write_bytes(b"not a zip file")
    with pytest.raises(HdlgenError, match="not a readable .npz"):
        load_dataset(tmp_path, "cifar10", "test")


def test_cifar10_jpeg_npz(tmp_path):
    rng = np.random.default_rng(1)
    try:
        from PIL import Image
    except ImportError:
        Image = None
    # smooth images: JPEG keeps them within a few levels (random noise it does not)
    ramp = np.add.outer(np.arange(32), np.arange(32))[None, :, :, None] * 3
    imgs = ((ramp + rng.integers(0, 64, (3, 1, 1, 3))) % 256).astype(np.uint8)
    blobs = []
    for im in imgs:
        if Image is None:
            blobs.append(b"\xff\xd8fake jpeg")
        else:
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, format="JPEG", quality=90)
            blobs.append(buf.getvalue())
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    jpeg = np.frombuffer(b"".join(blobs), np.uint8)
    y = np.array([3, 8, 8], np.uint8)
    np.savez(tmp_path / "cifar10_train_jpeg.npz", jpeg=jpeg, offsets=offsets, y=y)
    if Image is None:
        with pytest.raises(HdlgenError, match="needs Pillow"):
            load_dataset(tmp_path, "cifar10", "train")
    else:
        x, gy = load_dataset(tmp_path, "cifar10", "train")
        assert x.shape == (3, 32, 32, 3) and list(gy) == [3, 8, 8]
        decoded = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])
        assert np.array_equal(x, decoded)  # exactly Pillow's decode, image by image, in order
    np.savez(tmp_path / "cifar10_train_jpeg.npz", jpeg=jpeg, offsets=offsets[::-1], y=y)
    with pytest.raises(HdlgenError, match="'offsets' must be 4 increasing"):
        load_dataset(tmp_path, "cifar10", "train")


def test_classes_and_augmentation():
    assert dataset_classes("cifar10")[0] == "airplane" and len(dataset_classes("fashion-mnist")) == 10
    assert default_augmentation("fashion-mnist") == (0, False)
    assert default_augmentation("cifar10") == (4, True)
    x = torch.arange(2 * 4 * 5 * 3, dtype=torch.uint8).reshape(2, 4, 5, 3)
    g = torch.Generator().manual_seed(0)
    assert augment(x, g) is x
    flipped = augment(x, torch.Generator().manual_seed(0), 0, True)
    for a, b in zip(x, flipped):
        assert torch.equal(a, b) or torch.equal(a.flip(1), b)
    cropped = augment(x, g, 2, False)
    assert cropped.shape == x.shape and cropped.dtype == x.dtype
    # each crop is a window of the zero-padded image
    padded = torch.zeros(2, 8, 9, 3, dtype=torch.uint8)
    padded[:, 2:6, 2:7] = x
    for i in range(2):
        assert any(torch.equal(padded[i, dy:dy + 4, dx:dx + 5], cropped[i])
                   for dy in range(5) for dx in range(5))
