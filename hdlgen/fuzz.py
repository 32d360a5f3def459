"""Random networks and foldings for differential testing (no torch needed).

Thresholds are drawn around each accumulator's likely values, so activations are neither
all +1 nor all -1, and class scores vary between images.
"""

from __future__ import annotations

import numpy as np

from .fold import Folding, LayerFold, plan as make_plan
from .fold.folding import divisors, input_size
from .ir import Graph, TensorType, uint


def random_graph(rng: np.random.Generator, shape=(4, 3, 1), hidden=(12, 8), classes=5, in_bits=8,
                 name="random") -> Graph:
    g = Graph(name, "image", TensorType(shape, uint(in_bits)))
    prev = g.add("flat", "flatten", "image")
    n = int(np.prod(shape))
    mean_in = (2 ** in_bits - 1) / 2
    for i, h in enumerate(hidden):
        w = rng.choice(np.array([-1, 1], np.int8), size=(h, n))
        g.add(f"fc{i}", "dense", prev, {"weight_dtype": "bipolar"}, {"weight": w})
        acc = g.nodes[-1].type.dtype
        spread = np.sqrt(n) * (mean_in if i == 0 else 1.0)
        centre = w.sum(axis=1) * mean_in if i == 0 else np.zeros(h)
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
