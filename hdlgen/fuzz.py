"""Random networks and foldings for differential testing (no torch needed).

Thresholds are drawn around each accumulator's likely values, so activations are neither
all +1 nor all -1, and class scores vary between images.
"""

from __future__ import annotations

import numpy as np

from .engines import divisors
from .engines.mvau import MvauFold, lane_cost
from .fold import Folding, auto_fold, plan as make_plan, predict
from .fold.timeline import input_size
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
    layers = {e.name: MvauFold(int(rng.choice(divisors(e.n_out))), int(rng.choice(divisors(e.n_in))))
              for e in p.mvaus}
    lanes = [d for d in divisors(input_size(p)) if d <= 16]
    return Folding(int(rng.choice(lanes)), layers)


def random_images(rng: np.random.Generator, graph: Graph, n: int) -> np.ndarray:
    t = graph.input_type
    return rng.integers(0, t.dtype.max + 1, size=(n,) + t.shape, dtype=np.int64).astype(np.uint8)


# -- networks for the randomized differential campaign (hdlgen.fuzz_campaign) ------------------

ODD_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17)
WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 19, 23, 24, 29, 31, 32)


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _biased_divisor(rng, n: int, limit: int | None = None) -> int:
    """A divisor of ``n``: 1 or ``n`` itself (the widest allowed) a quarter of the time each,
    else any divisor."""
    ds = [d for d in divisors(n) if limit is None or d <= limit]
    r = rng.random()
    if r < 0.25:
        return 1
    if r < 0.5:
        return ds[-1]
    return _pick(rng, ds)


def random_spec(rng: np.random.Generator) -> dict:
    """A random network description over every layer kind the hardware supports.

    Keys: ``kind`` ("fc" or "cnn"), ``shape`` (H, W, C), ``in_bits`` (1..8), ``convs`` (list of
    ``[M, K, stride, pad, pool, pool_stride, levels]``; pool 0 for none), ``hidden`` (list of
    ``[neurons, levels]``), ``classes``. ``levels`` is the number of thresholds of an
    activation: 1 gives a bipolar output, more a multi-bit unsigned one.
    """
    kind = "cnn" if rng.random() < 0.55 else "fc"
    in_bits = int(rng.integers(1, 9))
    levels = lambda: 1 if rng.random() < 0.75 else int(rng.integers(2, 4))  # noqa: E731
    convs = []
    if kind == "fc":
        shape = (_pick(rng, (1, 2, 3, 4, 5, 7)), _pick(rng, (1, 2, 3, 5, 6, 7)), _pick(rng, (1, 1, 2, 3)))
    else:
        h, w, c = int(rng.integers(3, 10)), int(rng.integers(3, 10)), _pick(rng, (1, 1, 2, 3))
        shape = (h, w, c)
        for _ in range(int(rng.integers(1, 3))):
            k = int(rng.integers(1, min(3, h, w) + 1)) if rng.random() < 0.9 else int(rng.integers(1, min(5, h + 2, w + 2) + 1))
            stride = 1 if rng.random() < 0.65 else 2
            pad = int(rng.integers(0, k)) if k > 1 and rng.random() < 0.6 else 0
            oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
            if oh < 1 or ow < 1:
                k, stride, pad, oh, ow = 1, 1, 0, h, w
            m = _pick(rng, (1, 2, 3, 4, 5, 6, 7, 8))
            pool = pstride = 0
            if min(oh, ow) >= 2 and rng.random() < 0.45:
                pool = int(rng.integers(2, min(3, oh, ow) + 1))
                pstride = pool if rng.random() < 0.7 else int(rng.integers(1, pool + 1))
            convs.append([m, k, stride, pad, pool, pstride, levels()])
            h, w = oh, ow
            if pool:
                h, w = (h - pool) // pstride + 1, (w - pool) // pstride + 1
            if h * w == 1:
                break
    hidden = [[_pick(rng, WIDTHS), levels()] for _ in range(int(rng.integers(0, 4 if kind == "fc" else 3)))]
    return {"kind": kind, "shape": list(shape), "in_bits": in_bits, "convs": convs, "hidden": hidden,
            "classes": int(rng.integers(2, 12))}


def _activation(rng, g, name, src, w, in_dtype, levels):
    """A threshold node after ``src`` (accumulator of ``w`` times inputs of ``in_dtype``) with
    ``levels`` thresholds per channel drawn around the accumulator's likely range."""
    acc = g.types()[src].dtype
    w = w.reshape(w.shape[0], -1).astype(np.int64)
    n = w.shape[1]
    if in_dtype.kind == "bipolar":
        centre, spread = np.zeros(len(w)), np.sqrt(n)
    else:
        mean = in_dtype.max / 2
        centre, spread = w.sum(axis=1) * mean, np.sqrt(n) * max(mean, 0.5)
    t = np.round(centre[:, None] + rng.normal(0, spread / 2, (len(w), levels))).astype(np.int64)
    t = np.sort(np.clip(t, acc.min, acc.max + 1), axis=1)
    out = "bipolar" if levels == 1 else "uint"
    return g.add(name, "threshold", src, {"out": out}, {"thresholds": t})


def spec_graph(spec: dict, rng: np.random.Generator, name: str = "fuzz") -> Graph:
    """The IR graph of a :func:`random_spec` description, weights and thresholds from ``rng``."""
    g = Graph(name, "image", TensorType(tuple(spec["shape"]), uint(spec["in_bits"])))
    prev = "image"
    bip = np.array([-1, 1], np.int8)
    for j, (m, k, stride, pad, pool, pstride, levels) in enumerate(spec["convs"]):
        x = g.types()[prev]
        w = rng.choice(bip, size=(m, k, k, x.shape[2]))
        pv = int(rng.choice([-1, 1])) if x.dtype.kind == "bipolar" else int(rng.integers(0, x.dtype.max + 1))
        g.add(f"conv{j}", "conv2d", prev, {"weight_dtype": "bipolar", "kernel": k, "stride": stride, "pad": pad,
                                          "pad_value": pv}, {"weight": w})
        prev = _activation(rng, g, f"cact{j}", f"conv{j}", w, x.dtype, levels)
        if pool:
            prev = g.add(f"pool{j}", "maxpool", prev, {"kernel": pool, "stride": pstride})
    prev = g.add("flat", "flatten", prev)
    for i, (h, levels) in enumerate(spec["hidden"]):
        x = g.types()[prev]
        w = rng.choice(bip, size=(h, x.shape[0]))
        g.add(f"fc{i}", "dense", prev, {"weight_dtype": "bipolar"}, {"weight": w})
        prev = _activation(rng, g, f"act{i}", f"fc{i}", w, x.dtype, levels)
    n = g.types()[prev].shape[0]
    g.add("fcout", "dense", prev, {"weight_dtype": "bipolar"},
          {"weight": rng.choice(bip, size=(spec["classes"], n))})
    g.add("cls", "argmax", "fcout")
    return g


def biased_folding(rng: np.random.Generator, graph: Graph, max_cycles: int | None = None,
                   max_lanes: int = 16, max_cost: int | None = None) -> Folding:
    """A legal folding with PE and SIMD of 1, of the full width, or any divisor between, and
    ``in_lanes`` a divisor of the input size up to ``max_lanes``. Foldings whose cycle model
    exceeds ``max_cycles``, or whose PE x SIMD lanes cost more than ``max_cost`` (see
    :func:`hdlgen.engines.mvau.lane_cost`), are drawn again (40 tries, then the cheapest folding
    meeting ``max_cycles``)."""
    p = make_plan(graph)
    n = input_size(p)
    for _ in range(40):
        layers = {e.name: MvauFold(_biased_divisor(rng, e.n_out), _biased_divisor(rng, e.n_in)) for e in p.mvaus}
        fo = Folding(_biased_divisor(rng, n, max_lanes), layers)
        if max_cost is not None and sum(layers[e.name].pe * layers[e.name].simd * lane_cost(e)
                                        for e in p.mvaus) > max_cost:
            continue
        if max_cycles is None or predict(p, fo)["cycles_per_image"] <= max_cycles:
            return fo
    fast = auto_fold(p, max_cycles or 1024)
    return Folding(max(d for d in divisors(n) if d <= max_lanes), fast.layers)


def spec_images(rng: np.random.Generator, graph: Graph, n: int) -> np.ndarray:
    """``n`` images: all zeros, all at the maximum, then random ones."""
    x = random_images(rng, graph, n)
    if n >= 1:
        x[0] = 0
    if n >= 2:
        x[1] = graph.input_type.dtype.max
    return x


def random_network(seed: int, max_cycles: int = 2500, max_cost: int = 400):
    """``(spec, graph, folding)`` of campaign network ``seed``: everything follows from the seed."""
    rng = np.random.default_rng([0x68646c, int(seed)])
    spec = random_spec(rng)
    g = spec_graph(spec, rng, f"fuzz{seed}")
    return spec, g, biased_folding(rng, g, max_cycles, max_cost=max_cost)


def random_resnet(rng: np.random.Generator, shape=(32, 32, 3), widths=(64, 128, 256), blocks: int = 2,
                  classes: int = 10, inner=None, name: str = "resnet") -> Graph:
    """A binarized residual network with random weights, in the node layout of the ResNet-14
    exporter: ``stem`` conv 3x3 (pixels padded with 0) + ``stem_act``; per stage ``i`` and
    block ``j`` the block ``s{i}b{j}``: ``_conv1`` (3x3, stride 2 at the start of every stage
    but the first) + ``_act1``, ``_conv2`` (3x3), and ``_add``, the threshold select of
    ``_conv2``'s accumulator by the shortcut: the block input, or at a stride or width change
    ``_sc`` (1x1 conv, stride 2) + ``_sc_act``; then ``pool`` (global sum), ``fc`` and ``cls``.
    ``inner`` gives each block's first convolution its own width (default: its stage's).
    The defaults are ResNet-14 on 32x32 RGB images."""
    g = Graph(name, "image", TensorType(tuple(shape), uint(8)))
    bip = np.array([-1, 1], np.int8)

    def conv(node, src, m, k, stride, pad, pv):
        c = g.types()[src].shape[2]
        w = rng.choice(bip, size=(m, k, k, c))
        g.add(node, "conv2d", src, {"weight_dtype": "bipolar", "kernel": k, "stride": stride, "pad": pad,
                                    "pad_value": pv}, {"weight": w})
        return w

    w = conv("stem", "image", widths[0], 3, 1, 1, 0)
    prev = g.add("stem_act", "threshold", "stem", {"out": "bipolar"},
                 {"thresholds": _thresholds(rng, w, g.nodes[-1].type.dtype, True, 127.5)})
    k = 0
    for i, width in enumerate(widths):
        for j in range(blocks):
            b = f"s{i}b{j}"
            cin = g.types()[prev].shape[2]
            stride = 2 if (i and not j) else 1
            mid = inner[k] if inner else width
            k += 1
            w = conv(f"{b}_conv1", prev, mid, 3, stride, 1, -1)
            h = g.add(f"{b}_act1", "threshold", f"{b}_conv1", {"out": "bipolar"},
                      {"thresholds": _thresholds(rng, w, g.nodes[-1].type.dtype, False, 0)})
            w = conv(f"{b}_conv2", h, width, 3, 1, 1, -1)
            acc = g.nodes[-1].type.dtype
            shortcut = prev
            if stride != 1 or cin != width:
                ws = conv(f"{b}_sc", prev, width, 1, stride, 0, -1)
                shortcut = g.add(f"{b}_sc_act", "threshold", f"{b}_sc", {"out": "bipolar"},
                                 {"thresholds": _thresholds(rng, ws, g.nodes[-1].type.dtype, False, 0)})
            centre = _thresholds(rng, w, acc, False, 0)[:, 0]
            gap = np.abs(rng.normal(0, np.sqrt(w[0].size) / 3, width)).astype(np.int64)
            t = np.clip(np.stack([centre + gap, centre - gap], 1), acc.min, acc.max + 1)
            prev = g.add(f"{b}_add", "select_threshold", (f"{b}_conv2", shortcut), {}, {"thresholds": t})
    g.add("pool", "globalsum", prev)
    g.add("fc", "dense", "pool", {"weight_dtype": "bipolar"},
          {"weight": rng.choice(bip, size=(classes, g.types()["pool"].shape[0]))})
    g.add("cls", "argmax", "fc")
    return g
