"""A negative control for whole-network simulations: a copy of an emitted core with one
weight bit flipped, chosen so that the flip changes at least one label."""

import shutil

import numpy as np

from hdlgen.golden import run
from hdlgen.pack import pack_mvau, read_mem, write_mem


def _flip_that_matters(design, x):
    """A weight bit of the output layer whose flip changes at least one of the images' labels,
    with the labels the flipped network gives."""
    g = design.graph
    last = design.plan.mvaus[-1]
    node = g.node(last.name)
    hidden = run(g, x)[node.inputs[0]]
    w = node.params["weight"]
    scores = hidden @ w.T.astype(np.int64)
    base = np.argmax(scores, axis=1)
    for c in range(w.shape[0]):
        for j in range(w.shape[1]):
            s2 = scores.copy()
            s2[:, c] -= 2 * w[c, j] * hidden[:, j]
            labels = np.argmax(s2, axis=1)
            if (labels != base).any():
                return last, (c, j), labels
    raise AssertionError("no single weight flip changes a label")


def flipped_core(design, rtl, x, dest):
    """Copy the core in *rtl* to *dest* with one weight bit flipped in its ``.mem`` file;
    return the labels the flipped network gives *x*."""
    e, (c, j), flipped_labels = _flip_that_matters(design, x)
    f = design.folding[e.name]
    w = design.graph.node(e.name).params["weight"].copy()
    w[c, j] = -w[c, j]
    image = pack_mvau(e, f, w, None)
    shutil.copytree(rtl, dest)
    mem = dest / f"{e.name}_weights.mem"
    old = read_mem(mem, image.weight_width)
    diff = [a ^ b for a, b in zip(old, image.weight_words)]
    assert sum(bin(d).count("1") for d in diff) == 1  # exactly one bit differs
    write_mem(mem, image.weight_words, image.weight_width)
    return flipped_labels
