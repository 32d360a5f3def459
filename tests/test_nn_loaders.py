"""CIFAR-10 / CIFAR-100 python pickles and SVHN .mat loaders, on small files written here in the
official formats, and their errors."""

import pickle
import struct
import zlib

import numpy as np
import pytest

from hdlgen.errors import HdlgenError
from hdlgen.nn.data import (dataset_classes, dataset_names, default_augmentation, load_dataset,
                            read_cifar_pickle, read_mat5)


# -- writers of the official formats ------------------------------------------------------------

def write_cifar_batch(path, x_nhwc, labels, label_key=b"labels", protocol=2):
    data = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)).reshape(len(x_nhwc), 3072)
    d = {b"batch_label": b"batch", label_key: [int(v) for v in labels], b"data": data,
         b"filenames": [b"img_%d.png" % i for i in range(len(x_nhwc))]}
    if label_key == b"fine_labels":
        d[b"coarse_labels"] = [int(v) // 5 for v in labels]
    path.write_bytes(pickle.dumps(d, protocol=protocol))


def write_cifar10(root, n=4, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {"train": ([], [])}
    for i in range(1, 6):
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        write_cifar_batch(folder / f"data_batch_{i}", x, y, protocol=2 if i % 2 else 4)
        out["train"][0].append(x)
        out["train"][1].append(y)
    x = rng.integers(0, 256, (n + 1, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n + 1)
    write_cifar_batch(folder / "test_batch", x, y)
    out["train"] = (np.concatenate(out["train"][0]), np.concatenate(out["train"][1]))
    out["test"] = (x, y)
    return folder, out


def _mat_element(kind, payload, endian="<"):
    if 0 < len(payload) <= 4:  # small data element
        return struct.pack(endian + "I", (len(payload) << 16) | kind) + payload.ljust(4, b"\0")
    return struct.pack(endian + "II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)


_MI_OF = {"u1": 2, "f8": 9, "i4": 5}
_MX_OF = {"u1": 9, "f8": 6}


def mat_matrix(name, array, store=None, endian="<"):
    """One miMATRIX element: ``array`` of class uint8 or double, data stored as ``store``."""
    array = np.asarray(array)
    cls = _MX_OF[array.dtype.str[1:]]
    store = store or array.dtype.str[1:]
    flags = np.array([cls, 0], np.dtype("u4").newbyteorder(endian)).tobytes()
    dims = np.array(array.shape, np.dtype("i4").newbyteorder(endian)).tobytes()
    data = np.asarray(array.ravel(order="F"), np.dtype(store).newbyteorder(endian)).tobytes()
    body = (_mat_element(6, flags, endian) + _mat_element(5, dims, endian)
            + _mat_element(1, name.encode(), endian) + _mat_element(_MI_OF[store], data, endian))
    return struct.pack(endian + "II", 14, len(body)) + body


def write_mat(path, variables, compress=True, endian="<"):
    header = b"MATLAB 5.0 MAT-file, written by the hdlgen tests".ljust(116, b" ")
    header += b"\0" * 8 + struct.pack(endian + "H", 0x0100) + (b"IM" if endian == "<" else b"MI")
    body = b""
    for name, (array, store) in variables.items():
        element = mat_matrix(name, array, store, endian)
        if compress:
            z = zlib.compress(element)
            element = struct.pack(endian + "II", 15, len(z)) + z
        body += element
    path.write_bytes(header + body)


def write_svhn(root, split, n=7, seed=0, compress=True, y_store="f8"):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    digits = rng.integers(0, 10, n)
    digits[0] = 0
    y = np.where(digits == 0, 10, digits).astype(np.float64).reshape(n, 1)
    root.mkdir(parents=True, exist_ok=True)
    write_mat(root / f"{split}_32x32.mat", {"X": (x, "u1"), "y": (y, y_store)}, compress=compress)
    return x.transpose(3, 0, 1, 2), digits


# -- CIFAR-10 ---------------------------------------------------------------------------------------

def test_cifar10_pickles(tmp_path):
    folder, data = write_cifar10(tmp_path)
    for root in (tmp_path, folder):
        for split in ("train", "test"):
            x, y = load_dataset(root, "cifar10", split)
            assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and y.dtype == np.int64
            assert np.array_equal(x, data[split][0]) and np.array_equal(y, data[split][1])
    assert len(load_dataset(tmp_path, "cifar10", "train")[0]) == 20
    # the planes are R, G, B in row-major order
    raw = read_cifar_pickle(folder / "test_batch")
    assert raw["data"][0, 1024 + 32 + 2] == data["test"][0][0, 1, 2, 1]


def test_cifar10_npz_preferred_over_pickles(tmp_path):
    write_cifar10(tmp_path)
    x = np.full((2, 32, 32, 3), 7, np.uint8)
    np.savez(tmp_path / "cifar10_test.npz", x=x, y=np.array([1, 2]))
    gx, gy = load_dataset(tmp_path, "cifar10", "test")
    assert np.array_equal(gx, x) and list(gy) == [1, 2]
    assert len(load_dataset(tmp_path, "cifar10", "train")[0]) == 20


def test_cifar10_pickle_errors(tmp_path):
    folder, _ = write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(HdlgenError, match="lacks data_batch_3"):
        load_dataset(tmp_path, "cifar10", "train")
    (folder / "test_batch").write_bytes(b"this is not a pickle")
    with pytest.raises(HdlgenError, match="test_batch is not a CIFAR python batch file"):
        load_dataset(tmp_path, "cifar10", "test")
    # a pickle that would call os.system is refused, not run
    (folder / "test_batch").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(HdlgenError, match="os.system is not allowed"):
        load_dataset(tmp_path, "cifar10", "test")
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(HdlgenError, match="expected a dict"):
        load_dataset(tmp_path, "cifar10", "test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(HdlgenError, match="no b'labels' entry"):
        load_dataset(tmp_path, "cifar10", "test")
    write_cifar_batch(folder / "test_batch", np.zeros((2, 32, 32, 3), np.uint8), [0, 10])
    with pytest.raises(HdlgenError, match=r"labels must lie in 0 \.\. 9"):
        load_dataset(tmp_path, "cifar10", "test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3000), np.uint8),
                                                      b"labels": [0, 1]}))
    with pytest.raises(HdlgenError, match=r"b'data' must be uint8 \(N, 3072\)"):
        load_dataset(tmp_path, "cifar10", "test")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HdlgenError, match="cifar-10-batches-py"):
        load_dataset(empty, "cifar10", "test")


# -- CIFAR-100 --------------------------------------------------------------------------------------

def test_cifar100(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = {}
    for split, n in (("train", 6), ("test", 3)):
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 100, n)
        y[0] = 99
        write_cifar_batch(folder / split, x, y, label_key=b"fine_labels")
        data[split] = (x, y)
    for root in (tmp_path, folder):
        for split in ("train", "test"):
            x, y = load_dataset(root, "cifar100", split)
            assert np.array_equal(x, data[split][0]) and np.array_equal(y, data[split][1])
    assert len(dataset_classes("cifar100")) == 100 and dataset_classes("cifar100")[99] == "worm"
    assert "cifar100" in dataset_names() and default_augmentation("cifar100") == (4, True)
    write_cifar_batch(folder / "test", data["test"][0], [0, 1, 2])  # coarse only: wrong key
    (folder / "test").write_bytes(pickle.dumps({b"data": data["test"][0].reshape(3, -1),
                                               b"coarse_labels": [0, 1, 2]}))
    with pytest.raises(HdlgenError, match="no b'fine_labels' entry"):
        load_dataset(tmp_path, "cifar100", "test")
    (folder / "train").unlink()
    with pytest.raises(HdlgenError, match="lacks train"):
        load_dataset(tmp_path, "cifar100", "train")
    with pytest.raises(HdlgenError, match="does not exist"):
        load_dataset(tmp_path / "nowhere", "cifar100", "train")


# -- SVHN -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress,y_store", [(True, "f8"), (False, "f8"), (True, "u1"), (False, "u1")])
def test_svhn(tmp_path, compress, y_store):
    x, digits = write_svhn(tmp_path / "svhn", "test", compress=compress, y_store=y_store)
    for root in (tmp_path, tmp_path / "svhn"):
        gx, gy = load_dataset(root, "svhn", "test")
        assert gx.dtype == np.uint8 and gx.shape == (7, 32, 32, 3) and gy.dtype == np.int64
        assert np.array_equal(gx, x) and np.array_equal(gy, digits) and gy[0] == 0
    assert dataset_classes("svhn")[0] == "0" and default_augmentation("svhn") == (4, False)


def test_mat5_reader(tmp_path):
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    b = np.array([[1, 2, 3]], np.uint8)
    for endian in ("<", ">"):
        for compress in (True, False):
            p = tmp_path / f"m{endian == '<'}{compress}.mat"
            write_mat(p, {"a": (a, "f8"), "bb": (b, "u1")}, compress=compress, endian=endian)
            got = read_mat5(p)
            assert got["a"].dtype == np.float64 and np.array_equal(got["a"], a)
            assert got["bb"].dtype == np.uint8 and np.array_equal(got["bb"], b)
            assert list(read_mat5(p, ("bb",))) == ["bb"]


def test_svhn_errors(tmp_path):
    root = tmp_path / "s"
    write_svhn(root, "train")
    with pytest.raises(HdlgenError, match="no test_32x32.mat"):
        load_dataset(root, "svhn", "test")
    p = root / "train_32x32.mat"
    good = p.read_bytes()
    p.write_bytes(good[:len(good) - 50])
    with pytest.raises(HdlgenError, match="corrupt or truncated"):
        load_dataset(root, "svhn", "train")
    p.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(HdlgenError, match="not a MATLAB level-5"):
        load_dataset(root, "svhn", "train")
    p.write_bytes(b"MATLAB 7.3 MAT-file" + b" " * 200)
    with pytest.raises(HdlgenError, match="7.3"):
        load_dataset(root, "svhn", "train")
    write_mat(p, {"X": (np.zeros((32, 32, 3, 2), np.uint8), "u1")})
    with pytest.raises(HdlgenError, match="no variable 'y'"):
        load_dataset(root, "svhn", "train")
    write_mat(p, {"X": (np.zeros((32, 32, 3, 2), np.uint8), "u1"), "y": (np.array([[1.0], [11.0]]), "f8")})
    with pytest.raises(HdlgenError, match=r"labels must be integers 1 \.\. 10"):
        load_dataset(root, "svhn", "train")
    write_mat(p, {"X": (np.zeros((28, 28, 1, 2), np.uint8), "u1"), "y": (np.ones((2, 1)), "f8")})
    with pytest.raises(HdlgenError, match=r"X must be \(32, 32, 3, N\)"):
        load_dataset(root, "svhn", "train")
    write_mat(p, {"X": (np.zeros((32, 32, 3, 2), np.uint8), "u1"), "y": (np.ones((3, 1)), "f8")})
    with pytest.raises(HdlgenError, match="y must hold 2 labels"):
        load_dataset(root, "svhn", "train")
