"""Random networks and foldings for differential testing (no torch needed).

Thresholds are drawn around each accumulator's likely values, so activations are neither
all +1 nor all -1, and class scores vary between images.
"""

from __future__ import annotations

import numpy as np

from .fold import Folding, LayerFold, plan as make_plan
from .fold.folding import divisors, input_size
from .ir import Graph, TensorType, uint


def _thresholds(rng, w, acc, uint_in: bool, mean_in: float):
    """One threshold per output around the accumulator's likely value for random inputs."""
    n = w[0].size
    w = w.reshape(w.shape[0], -1)
    spread = np.sqrt(n) * (mean_in if uint_in else 1.0)
    centre = w.sum(axis=1) * mean_in if uint_in else np.zeros(len(w))
    t = np.round(centre + rng.normal(0, spread / 2, len(w))).astype(np.int64)
    return np.clip(t, acc.min, acc.max + 1)[:, None]


def random_graph(rng: np.random.Generator, shape=(4, 3, 1), hidden=(12, 8), classes=5, in_bits=8,
                 name="random", convs=None) -> Graph:
    """A random binarized network on (H, W, C) images of ``in_bits``-bit pixels.

    ``convs`` is a list of ``(M, K, S, P, pool)``: a conv2d with M output channels, kernel K,
    stride S and padding P (padding value drawn at random for bipolar inputs), its threshold,
    then a ``pool`` x ``pool`` max pool (stride ``pool``) unless ``pool`` is 0 or None. Then
    flatten, dense layers of ``hidden`` neurons each with a threshold, a dense layer of
    ``classes`` scores and an argmax.
    """
    g = Graph(name, "image", TensorType(shape, uint(in_bits)))
    prev = "image"
    mean_in = (2 ** in_bits - 1) / 2
    uint_in = True
    for j, (m, k, stride, pad, pool) in enumerate(convs or ()):
        c = g.types()[prev].shape[2]
        w = rng.choice(np.array([-1, 1], np.int8), size=(m, k, k, c))
        pv = 0 if uint_in else int(rng.choice([-1, 1]))
        g.add(f"conv{j}", "conv2d", prev, {"weight_dtype": "bipolar", "kernel": k, "stride": stride, "pad": pad,
                                          "pad_value": pv}, {"weight": w})
        t = _thresholds(rng, w, g.nodes[-1].type.dtype, uint_in, mean_in)
        prev = g.add(f"cact{j}", "threshold", f"conv{j}", {"out": "bipolar"}, {"thresholds": t})
        uint_in = False
        if pool:
            prev = g.add(f"pool{j}", "maxpool", prev, {"kernel": pool, "stride": pool})
    n = g.types()[prev].size
    prev = g.add("flat", "flatten", prev)
    for i, h in enumerate(hidden):
        w = rng.choice(np.array([-1, 1], np.int8), size=(h, n))
        g.add(f"fc{i}", "dense", prev, {"weight_dtype": "bipolar"}, {"weight": w})
        acc = g.nodes[-1].type.dtype
        first = i == 0 and uint_in
        spread = np.sqrt(n) * (mean_in if first else 1.0)
        centre = w.sum(axis=1) * mean_in if first else np.zeros(h)
        t = np.round(centre + rng.normal(0, spread / 2, h)).astype(np.int64)
        t = np.clip(t, acc.min, acc.max + 1)[:, None]
        prev = g.add(f"act{i}", "threshold", f"fc{i}", {"out": "bipolar"}, {"thresholds": t})
        n = h
    w = rng.choice(np.array([-1, 1], np.int8), size=(classes, n))
    g.add("fcout", "dense", prev, {"weight_dtype": "bipolar"}, {"weight": w})
    g.add("cls", "argmax", "fcout")
    return g


def random_folding(rng: np.random.Generator, graph: Graph) -> Folding:
    p = make_plan(graph)
    layers = {e.name: LayerFold(int(rng.choice(divisors(e.n_out))), int(rng.choice(divisors(e.n_in))))
              for e in p.mvaus}
    lanes = [d for d in divisors(input_size(p)) if d <= 16]
    return Folding(int(rng.choice(lanes)), layers)


def random_images(rng: np.random.Generator, graph: Graph, n: int) -> np.ndarray:
    t = graph.input_type
    return rng.integers(0, t.dtype.max + 1, size=(n,) + t.shape, dtype=np.int64).astype(np.uint8)
