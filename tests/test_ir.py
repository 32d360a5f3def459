"""IR types, graph checking, serialization and the golden executor."""

import numpy as np
import pytest

from hdlgen.fuzz import random_graph, random_images
from hdlgen.golden import classify, run
from hdlgen.ir import BIPOLAR, DType, Graph, TensorType, accumulator, sint, uint


def test_dtype_ranges_and_parse():
    assert (uint(8).min, uint(8).max) == (0, 255)
    assert (sint(4).min, sint(4).max) == (-8, 7)
    assert (BIPOLAR.min, BIPOLAR.max) == (-1, 1)
    for t in (uint(3), sint(13), BIPOLAR):
        assert DType.parse(str(t)) == t
    with pytest.raises(ValueError, match="not a dtype"):
        DType.parse("float32")
    assert DType.for_range(0, 255) == uint(8)
    assert DType.for_range(-256, 255) == sint(9)
    assert DType.for_range(-257, 0) == sint(10)
    assert not BIPOLAR.holds(np.array([1, 0, -1]))


def test_accumulator_width_from_fan_in():
    assert accumulator(784, uint(8), BIPOLAR) == DType.for_range(-784 * 255, 784 * 255)
    acc = accumulator(256, BIPOLAR, BIPOLAR)
    assert (acc.min <= -256) and (acc.max >= 256) and acc.bits == 10


def _small_graph():
    g = Graph("g", "image", TensorType((2, 2, 1), uint(8)))
    g.add("flat", "flatten", "image")
    g.add("fc0", "dense", "flat", {}, {"weight": np.array([[1, -1, 1, -1], [1, 1, 1, 1]], np.int8)})
    g.add("act0", "threshold", "fc0", {"out": "bipolar"}, {"thresholds": np.array([[0], [500]])})
    g.add("fc1", "dense", "act0", {}, {"weight": np.array([[1, 1], [1, -1], [-1, 1]], np.int8)})
    g.add("cls", "argmax", "fc1")
    return g


def test_golden_hand_computed():
    g = _small_graph()
    x = np.array([[10, 5, 0, 0], [0, 0, 255, 255], [100, 100, 100, 100]]).reshape(3, 2, 2, 1)
    v = run(g, x)
    assert v["fc0"].tolist() == [[5, 15], [0, 510], [0, 400]]
    assert v["act0"].tolist() == [[1, -1], [1, 1], [1, -1]]
    assert v["fc1"].tolist() == [[0, 2, -2], [2, 0, 0], [0, 2, -2]]
    assert v["cls"][:, 0].tolist() == [1, 0, 1]  # a tie picks the lowest index
    assert classify(g, x).tolist() == [1, 0, 1]


def test_graph_rejects_bad_nodes():
    g = Graph("g", "image", TensorType((4,), uint(8)))
    with pytest.raises(ValueError, match="bipolar"):
        g.add("fc", "dense", "image", {}, {"weight": np.full((2, 4), 3, np.int8)})
    with pytest.raises(ValueError, match="columns"):
        g.add("fc", "dense", "image", {}, {"weight": np.ones((2, 5), np.int8)})
    with pytest.raises(ValueError, match="unknown op"):
        g.add("x", "conv9d", "image")
    with pytest.raises(ValueError, match="no earlier node"):
        g.add("x", "flatten", "nothing")
    g2 = Graph("g", "image", TensorType((4,), uint(8)))
    g2.add("fc", "dense", "image", {}, {"weight": np.ones((2, 4), np.int8)})
    with pytest.raises(ValueError, match="must lie in"):
        g2.add("t", "threshold", "fc", {}, {"thresholds": np.array([[10 ** 6], [0]])})
    with pytest.raises(ValueError, match="ascend"):
        g2.add("t", "threshold", "fc", {"out": "uint"}, {"thresholds": np.array([[5, 1], [0, 1]])})


def test_save_load_round_trip_is_exact_and_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    g = random_graph(rng, shape=(3, 3, 2), hidden=(10, 6), classes=4)
    g.meta["classes"] = ["a", "b", "c", "d"]
    g.save(tmp_path / "a" / "graph")
    g.save(tmp_path / "b" / "graph")
    for suffix in (".json", ".npz"):
        assert (tmp_path / "a" / f"graph{suffix}").read_bytes() == (tmp_path / "b" / f"graph{suffix}").read_bytes()
    h = Graph.load(tmp_path / "a" / "graph.json")
    assert h.meta == g.meta and h.summary() == g.summary()
    x = random_images(rng, g, 20)
    a, b = run(g, x), run(h, x)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_load_rejects_tampered_files(tmp_path):
    g = _small_graph()
    js, _ = g.save(tmp_path / "graph")
    text = js.read_text()
    js.write_text(text.replace('"format": "hdlgen-ir"', '"format": "other"'))
    with pytest.raises(ValueError, match="not an hdlgen IR"):
        Graph.load(js)
    js.write_text(text.replace('"dtype": "int11"', '"dtype": "int5"'))
    with pytest.raises(ValueError, match="stored as"):
        Graph.load(js)


def test_golden_checks_input_range():
    g = _small_graph()
    with pytest.raises(ValueError, match="uint8"):
        run(g, np.full((1, 2, 2, 1), 256))
    with pytest.raises(ValueError, match="shape"):
        run(g, np.zeros((1, 4)))
