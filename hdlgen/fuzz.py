"""Random networks and foldings for differential testing (no torch needed).

Thresholds are drawn around each accumulator's likely values, so activations are neither
all +1 nor all -1, and class scores vary between images.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from .engines import divisors, engine_kind
from .engines.mvau import MvauFold
from .fold import Folding, auto_fold, plan as make_plan, predict
from .fold.timeline import input_size
from .golden.executor import run
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


def _biased(rng, values: list):
    """One of the sorted ``values``: the first or the last a quarter of the time each, else any."""
    r = rng.random()
    if r < 0.25:
        return values[0]
    if r < 0.5:
        return values[-1]
    return _pick(rng, values)


def _biased_knobs(rng, kind, e):
    """Fold knobs of engine ``e`` among its kind's candidates, each knob :func:`_biased` over
    the values it takes there (any candidate when that combination is not one)."""
    candidates = kind.candidates(e)
    knobs = kind.Knobs(**{f.name: _biased(rng, sorted({getattr(c, f.name) for c in candidates}))
                          for f in fields(kind.Knobs)})
    return knobs if knobs in candidates else _pick(rng, candidates)


def random_spec(rng: np.random.Generator) -> dict:
    """A random network description over every layer kind the hardware supports.

    Keys: ``kind`` ("fc", "cnn" or "resnet"), ``shape`` (H, W, C), ``in_bits`` (1..8), ``hidden``
    (list of ``[neurons, levels]``), ``classes``; for "fc" and "cnn" ``convs`` (list of
    ``[M, K, stride, pad, pool, pool_stride, levels]``; pool 0 for none), for "resnet" ``stem``
    and ``stages`` (:func:`residual_graph`). ``levels`` is the number of thresholds of an
    activation: 1 gives a bipolar output, more a multi-bit unsigned one.
    """
    r = rng.random()
    kind = "cnn" if r < 0.55 else "fc" if r < 0.8 else "resnet"
    in_bits = int(rng.integers(1, 9))
    levels = lambda: 1 if rng.random() < 0.75 else int(rng.integers(2, 4))  # noqa: E731
    if kind == "resnet":
        return _random_residual_spec(rng, in_bits, levels)
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


RES_WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12)
MAX_BLOCKS = 5


def _random_residual_spec(rng, in_bits: int, levels) -> dict:
    """A small residual network: 1 to 3 stages of 1 to 3 blocks (at most :data:`MAX_BLOCKS` in
    all) on images of 3 to 8 pixels a side; a later stage starts with stride 2 (while the image
    is wider than a pixel) and a width of its own."""
    h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    shape = [h, w, _pick(rng, (1, 1, 2, 3))]
    first = _pick(rng, RES_WIDTHS)
    stem = [first if rng.random() < 0.6 else _pick(rng, RES_WIDTHS), _pick(rng, (1, 3, 3, 3)),
            int(rng.integers(0, 2 ** in_bits))]
    n_stages = _pick(rng, (1, 2, 2, 3))
    cin, left, stages = stem[0], MAX_BLOCKS, []
    for i in range(n_stages):
        width = first if i == 0 else _pick(rng, RES_WIDTHS)
        stride = 2 if i and min(h, w) > 1 and rng.random() < 0.8 else 1
        stage = []
        for j in range(int(rng.integers(1, min(3, left - (n_stages - 1 - i)) + 1))):
            stage.append(_random_block(rng, cin, width, stride if j == 0 else 1, levels()))
            cin = width
        left -= len(stage)
        if stride == 2:
            h, w = (h + 1) // 2, (w + 1) // 2
        stages.append(stage)
    hidden = [[_pick(rng, WIDTHS), levels()] for _ in range(int(rng.integers(1, 3)))]
    return {"kind": "resnet", "shape": shape, "in_bits": in_bits, "stem": stem, "stages": stages,
            "hidden": hidden, "classes": int(rng.integers(2, 12))}


def _random_block(rng, cin: int, width: int, stride: int, levels: int) -> dict:
    """A residual block (:func:`residual_graph`) from ``cin`` to ``width`` channels: a
    projection shortcut where the stride or the width changes, and now and then where the
    identity would do."""
    pad1 = int(rng.choice([-1, 1]))
    pad2 = int(rng.choice([-1, 1])) if levels == 1 else int(rng.integers(0, levels + 1))   # after _act1
    pad_values = [pad1, pad2]
    return {"width": width, "inner": width if rng.random() < 0.6 else _pick(rng, RES_WIDTHS), "stride": stride,
            "kernels": [_pick(rng, (1, 3, 3)), _pick(rng, (1, 3, 3))], "pad_values": pad_values, "levels": levels,
            "projection": bool(stride != 1 or cin != width or rng.random() < 0.25)}


BIPOLAR_WEIGHTS = np.array([-1, 1], np.int8)


def _likely_thresholds(rng, w, in_dtype, acc, levels: int) -> np.ndarray:
    """``levels`` sorted thresholds per output of weights ``w`` on inputs of ``in_dtype``,
    drawn around the accumulator's likely value for random inputs and clipped to ``acc``."""
    w = w.reshape(w.shape[0], -1).astype(np.int64)
    n = w.shape[1]
    if in_dtype.kind == "bipolar":
        centre, spread = np.zeros(len(w)), np.sqrt(n)
    else:
        mean = in_dtype.max / 2
        centre, spread = w.sum(axis=1) * mean, np.sqrt(n) * max(mean, 0.5)
    t = np.round(centre[:, None] + rng.normal(0, spread / 2, (len(w), levels))).astype(np.int64)
    return np.sort(np.clip(t, acc.min, acc.max + 1), axis=1)


def _activation(rng, g, name, src, w, in_dtype, levels):
    """A threshold node after ``src`` (accumulator of ``w`` times inputs of ``in_dtype``) with
    ``levels`` thresholds per channel drawn around the accumulator's likely range."""
    t = _likely_thresholds(rng, w, in_dtype, g.types()[src].dtype, levels)
    out = "bipolar" if levels == 1 else "uint"
    return g.add(name, "threshold", src, {"out": out}, {"thresholds": t})


def _add_conv(g, name, src, w, stride, pad, pad_value):
    g.add(name, "conv2d", src, {"weight_dtype": "bipolar", "kernel": w.shape[1], "stride": stride, "pad": pad,
                                "pad_value": pad_value}, {"weight": w})


CALIBRATION_IMAGES = 32


def _observed_activation(rng, g, name, src, levels):
    """A threshold node after ``src`` with ``levels`` thresholds per channel at random
    quantiles (20% to 80%) of ``src``'s values on random images, so that its outputs differ
    between images even where every image gives about the same sums (after a global pooling)."""
    acc = run(g, random_images(rng, g, CALIBRATION_IMAGES))[src].reshape(CALIBRATION_IMAGES, -1)
    q = np.sort(rng.uniform(0.2, 0.8, (acc.shape[1], levels)), axis=1)
    t = np.ceil([np.quantile(a, qs) for a, qs in zip(acc.T, q)]).astype(np.int64)
    out = "bipolar" if levels == 1 else "uint"
    return g.add(name, "threshold", src, {"out": out}, {"thresholds": t})


def _dense_tail(rng, g, prev, hidden, classes, out, observed=False):
    """Dense layers of ``hidden`` (``fc{i}`` + threshold ``act{i}``, its thresholds drawn
    around the likely sums or, when ``observed``, from sums on random images) after ``prev``,
    a dense layer ``out`` of ``classes`` scores and the argmax ``cls``."""
    for i, (h, levels) in enumerate(hidden):
        x = g.types()[prev]
        w = rng.choice(BIPOLAR_WEIGHTS, size=(h, x.shape[0]))
        g.add(f"fc{i}", "dense", prev, {"weight_dtype": "bipolar"}, {"weight": w})
        prev = (_observed_activation(rng, g, f"act{i}", f"fc{i}", levels) if observed else
                _activation(rng, g, f"act{i}", f"fc{i}", w, x.dtype, levels))
    n = g.types()[prev].shape[0]
    g.add(out, "dense", prev, {"weight_dtype": "bipolar"},
          {"weight": rng.choice(BIPOLAR_WEIGHTS, size=(classes, n))})
    g.add("cls", "argmax", out)


def spec_graph(spec: dict, rng: np.random.Generator, name: str = "fuzz") -> Graph:
    """The IR graph of a :func:`random_spec` description, weights and thresholds from ``rng``."""
    if spec["kind"] == "resnet":
        return residual_graph(spec, rng, name)
    g = Graph(name, "image", TensorType(tuple(spec["shape"]), uint(spec["in_bits"])))
    prev = "image"
    for j, (m, k, stride, pad, pool, pstride, levels) in enumerate(spec["convs"]):
        x = g.types()[prev]
        w = rng.choice(BIPOLAR_WEIGHTS, size=(m, k, k, x.shape[2]))
        pv = int(rng.choice([-1, 1])) if x.dtype.kind == "bipolar" else int(rng.integers(0, x.dtype.max + 1))
        _add_conv(g, f"conv{j}", prev, w, stride, pad, pv)
        prev = _activation(rng, g, f"cact{j}", f"conv{j}", w, x.dtype, levels)
        if pool:
            prev = g.add(f"pool{j}", "maxpool", prev, {"kernel": pool, "stride": pstride})
    _dense_tail(rng, g, g.add("flat", "flatten", prev), spec["hidden"], spec["classes"], "fcout")
    return g


def residual_graph(spec: dict, rng: np.random.Generator, name: str = "resnet") -> Graph:
    """The IR graph of a residual network description, weights and thresholds from ``rng``, in
    the node layout of the ResNet-14 exporter: ``stem`` conv + ``stem_act``; per stage ``i`` and
    block ``j`` the block ``s{i}b{j}``: ``_conv1`` + ``_act1``, ``_conv2``, and ``_add``, the
    threshold select of ``_conv2``'s accumulator by the shortcut: the block input, or with a
    projection ``_sc`` (1x1 conv) + ``_sc_act``; then ``pool`` (global sum), dense layers of
    ``hidden`` as in :func:`random_spec`, ``fc`` and ``cls``.

    Keys besides ``shape``, ``in_bits``, ``hidden`` and ``classes``: ``stem``, ``[M, K, P]``
    (M channels, kernel K, padding value P); ``stages``, each a list of blocks with ``width``,
    ``inner`` (the width of its first convolution), ``stride`` (of its first convolution and
    its projection), ``kernels`` (of its two convolutions), ``pad_values`` (theirs),
    ``levels`` (thresholds of ``_act1``) and ``projection``. Every convolution but the
    projection is padded by K // 2 (odd K keeps the image's size at stride 1).
    """
    g = Graph(name, "image", TensorType(tuple(spec["shape"]), uint(spec["in_bits"])))
    m, k, pv = spec["stem"]
    w = rng.choice(BIPOLAR_WEIGHTS, size=(m, k, k, spec["shape"][2]))
    _add_conv(g, "stem", "image", w, 1, k // 2, pv)
    prev = _activation(rng, g, "stem_act", "stem", w, g.input_type.dtype, 1)
    for i, stage in enumerate(spec["stages"]):
        for j, block in enumerate(stage):
            prev = _residual_block(rng, g, f"s{i}b{j}", prev, block)
    _dense_tail(rng, g, g.add("pool", "globalsum", prev), spec["hidden"], spec["classes"], "fc", observed=True)
    return g


def _residual_block(rng, g, b, src, block) -> str:
    x = g.types()[src]
    (k1, k2), (pv1, pv2) = block["kernels"], block["pad_values"]
    w = rng.choice(BIPOLAR_WEIGHTS, size=(block["inner"], k1, k1, x.shape[2]))
    _add_conv(g, f"{b}_conv1", src, w, block["stride"], k1 // 2, pv1)
    h = _activation(rng, g, f"{b}_act1", f"{b}_conv1", w, x.dtype, block["levels"])
    w = rng.choice(BIPOLAR_WEIGHTS, size=(block["width"], k2, k2, block["inner"]))
    _add_conv(g, f"{b}_conv2", h, w, 1, k2 // 2, pv2)
    shortcut = src
    if block["projection"]:
        ws = rng.choice(BIPOLAR_WEIGHTS, size=(block["width"], 1, 1, x.shape[2]))
        _add_conv(g, f"{b}_sc", src, ws, block["stride"], 0, -1)
        shortcut = _activation(rng, g, f"{b}_sc_act", f"{b}_sc", ws, x.dtype, 1)
    t = _select_thresholds(rng, w, g.types()[h].dtype, g.types()[f"{b}_conv2"].dtype)
    return g.add(f"{b}_add", "select_threshold", (f"{b}_conv2", shortcut), {}, {"thresholds": t})


def _select_thresholds(rng, w, in_dtype, acc) -> np.ndarray:
    """(C, 2) thresholds of a binarized residual add on the accumulator of ``w``: a centre
    drawn like an activation's, raised by a random gap where the shortcut is -1 (column 0)
    and lowered by it where the shortcut is +1."""
    centre = _likely_thresholds(rng, w, in_dtype, acc, 1)[:, 0]
    gap = np.abs(rng.normal(0, np.sqrt(w[0].size) / 3, len(w))).astype(np.int64)
    return np.clip(np.stack([centre + gap, centre - gap], 1), acc.min, acc.max + 1)


def biased_folding(rng: np.random.Generator, graph: Graph, max_cycles: int | None = None,
                   max_lanes: int = 16, max_cost: int | None = None) -> Folding:
    """A legal folding whose every knob (an MVAU's PE and SIMD) is the smallest, the largest or
    any value its engine allows (:func:`_biased_knobs`), and ``in_lanes`` a divisor of the input
    size up to ``max_lanes``. Foldings whose cycle model exceeds ``max_cycles``, or whose
    engines together combine more than ``max_cost`` input bits per cycle (the ``width`` of
    their :meth:`~hdlgen.engines.base.EngineKind.floor`), are drawn again (40 tries, then the
    cheapest folding meeting ``max_cycles``)."""
    p = make_plan(graph)
    lanes = [d for d in divisors(input_size(p)) if d <= max_lanes]
    for _ in range(40):
        layers = {e.name: _biased_knobs(rng, engine_kind(e), e) for e in p.layers}
        fo = Folding(_biased(rng, lanes), layers)
        if max_cost is not None and sum(engine_kind(e).floor(e, fo.knobs(e)).width for e in p.layers) > max_cost:
            continue
        if max_cycles is None or predict(p, fo)["cycles_per_image"] <= max_cycles:
            return fo
    return Folding(lanes[-1], auto_fold(p, max_cycles or 1024).layers)


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


def resnet_spec(shape=(32, 32, 3), widths=(64, 128, 256), blocks: int = 2, classes: int = 10,
                inner=None) -> dict:
    """The :func:`residual_graph` description of the ResNet-14 layout on 8-bit pixels: stem
    conv 3x3 (pixels padded with 0), ``blocks`` blocks per stage of ``widths`` of two 3x3
    convolutions (padded with -1), stride 2 at the start of every stage but the first, and
    projection shortcuts exactly where the stride or the width changes. ``inner`` gives each
    block's first convolution its own width (default: its stage's)."""
    stages, cin, k = [], widths[0], 0
    for i, width in enumerate(widths):
        stage = []
        for j in range(blocks):
            stride = 2 if (i and not j) else 1
            stage.append({"width": width, "inner": inner[k] if inner else width, "stride": stride,
                          "kernels": [3, 3], "pad_values": [-1, -1], "levels": 1,
                          "projection": stride != 1 or cin != width})
            cin, k = width, k + 1
        stages.append(stage)
    return {"kind": "resnet", "shape": list(shape), "in_bits": 8, "stem": [widths[0], 3, 0], "stages": stages,
            "hidden": [], "classes": classes}


def random_resnet(rng: np.random.Generator, shape=(32, 32, 3), widths=(64, 128, 256), blocks: int = 2,
                  classes: int = 10, inner=None, name: str = "resnet") -> Graph:
    """A binarized residual network of the :func:`resnet_spec` layout with random weights; the
    defaults are ResNet-14 on 32x32 RGB images."""
    return residual_graph(resnet_spec(shape, widths, blocks, classes, inner), rng, name)
