"""Export a trained :class:`~hdlgen.nn.layers.BinaryNet` to the integer IR.

The graph reads ``image`` (uint8, (H, W, C)). Per BinaryConv2d it has a ``conv2d`` node
``conv<j>`` (int8 weights (M, K, K, C) of exactly -1 and +1, attributes kernel, stride, pad and
the padding value) and a ``threshold`` node ``conv<j>_act``; per MaxPool a ``maxpool`` node
``pool<j>``; a Flatten becomes the ``flatten`` node (row-major, channel fastest, as the channels-
last PyTorch tensors). Then per BinaryDense a ``dense`` node ``fc<i>`` (int8 weights of exactly -1 and +1, ``weight_dtype`` "bipolar") and, for the
activated layers, a ``threshold`` node ``act<i>`` with a bipolar output. The output layer's
``dense`` node feeds the ``argmax`` node ``cls``.

BatchNorm + sign folds into one integer threshold per channel by
:func:`~hdlgen.nn.layers.bn_sign_thresholds`, the same function the PyTorch integer path
uses; a channel with a negative BatchNorm scale has its weight row (or filter) negated.

Binarized residual networks (the ``resnet14`` recipe) are exported by
:mod:`hdlgen.nn.export_resnet`; :func:`export` and :func:`export_checkpoint` dispatch to it.
"""

from __future__ import annotations

import json

import numpy as np
from torch import nn

from ..errors import HdlgenError
from ..ir import Graph, TensorType
from .layers import (PIXEL, PIXEL_SCALE, SUPPORTED, BinaryConv2d, BinaryDense, BinaryNet, Flatten, InputQuant,
                     MaxPool)

INPUT_NAME = "image"


def _layer_sequence(model):
    """(path, module) pairs of the model's layer chain."""
    if isinstance(model, BinaryNet):
        root, prefix = model.layers, "layers"
    elif isinstance(model, nn.Sequential):
        root, prefix = model, ""
    else:
        raise HdlgenError(f"cannot export a {type(model).__name__}: the model must be a BinaryNet "
                          "(hdlgen.nn.layers), an nn.Sequential of its layers or a binarized "
                          "resnet (models/resnet14.py with binary=True)")
    out = []

    def walk(seq, path):
        for name, m in seq.named_children():
            full = f"{path}.{name}" if path else name
            if isinstance(m, nn.Sequential):
                walk(m, full)
            else:
                out.append((full, m))

    walk(root, prefix)
    return out


def _unsupported(path, m):
    names = ", ".join(t.__name__ for t in SUPPORTED)
    return HdlgenError(f"cannot export module {path!r} of type {type(m).__name__}: "
                       f"supported layers are {names}")


def new_graph(name: str, shape, meta: dict | None) -> Graph:
    """An empty graph reading ``image`` (uint8 pixels of ``shape``, HWC), with ``meta`` (which
    must be JSON-serializable) plus the input scaling and layout."""
    meta = dict(meta or {})
    meta.setdefault("input_scaling", f"float model input = uint8 pixel / {PIXEL_SCALE}")
    meta.setdefault("input_layout", "NHWC")
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise HdlgenError(f"export metadata of {name!r} is not JSON-serializable: {e}") from None
    return Graph(name, INPUT_NAME, TensorType(tuple(shape), PIXEL), meta)


def export(model, name: str, meta: dict | None = None) -> Graph:
    """Build the IR graph of ``model`` (a BinaryNet, or a binarized residual network, which
    :func:`~hdlgen.nn.export_resnet.export_resnet` exports). ``meta`` (JSON-serializable) goes
    into ``graph.meta`` together with the input scaling and a description of the layers."""
    from .export_resnet import export_resnet, is_resnet

    if is_resnet(model):
        return export_resnet(model, name, meta)
    layers = _layer_sequence(model)
    if not layers:
        raise HdlgenError("cannot export an empty model")
    path0, first = layers[0]
    if not isinstance(first, InputQuant):
        if not isinstance(first, SUPPORTED):
            raise _unsupported(path0, first)
        raise HdlgenError(f"module {path0!r} ({type(first).__name__}): the model must start with InputQuant")
    g = new_graph(name, first.shape, meta)
    tensor, index, described = INPUT_NAME, 0, []
    n_conv = n_pool = 0
    finished = False
    for path, m in layers[1:]:
        if finished:
            raise HdlgenError(f"module {path!r} ({type(m).__name__}) follows the output layer; "
                              "the output layer (BinaryDense with activation=False) must be last")
        if isinstance(m, BinaryConv2d):
            tensor = _conv(g, tensor, m, path, n_conv)
            described.append({"module": path, "conv2d": f"conv{n_conv}", "in": m.in_channels,
                              "out": m.out_channels, "kernel": m.kernel_size, "stride": m.stride,
                              "pad": m.padding, "pad_value": m.effective_pad_value})
            n_conv += 1
            continue
        if isinstance(m, MaxPool):
            if len(g.types()[tensor].shape) != 3:
                raise HdlgenError(f"module {path!r} (MaxPool) needs an image input but gets shape "
                                  f"{g.types()[tensor].shape}")
            if n_conv == 0:
                raise HdlgenError(f"module {path!r} (MaxPool) must follow a BinaryConv2d")
            tensor = g.add(f"pool{n_pool}", "maxpool", tensor, {"kernel": m.kernel_size, "stride": m.stride})
            described.append({"module": path, "maxpool": f"pool{n_pool}", "kernel": m.kernel_size,
                              "stride": m.stride})
            n_pool += 1
            continue
        if isinstance(m, Flatten):
            if len(g.types()[tensor].shape) > 1:
                tensor = g.add("flatten", "flatten", tensor)
            continue
        if isinstance(m, BinaryDense):
            tensor = _dense(g, tensor, m, path, index)
            described.append({"module": path, "dense": f"fc{index}", "in": m.in_features,
                              "out": m.out_features, "activation": m.activation})
            if not m.activation:
                tensor = g.add("cls", "argmax", tensor)
                finished = True
            index += 1
            continue
        if isinstance(m, InputQuant):
            raise HdlgenError(f"module {path!r}: InputQuant may only be the first layer")
        raise _unsupported(path, m)
    if not finished:
        raise HdlgenError("the model has no output layer: it must end with BinaryDense(..., activation=False)")
    g.meta.setdefault("layers", described)
    g.validate()
    return g


def _check_input(g: Graph, tensor: str, m, path: str, want: str, ndim: int, attr: str, size: int, unit: str,
                 hint: str = ""):
    """The layer's input tensor has the rank, size (last axis) and type the layer was built for."""
    xt = g.types()[tensor]
    kind = type(m).__name__
    if len(xt.shape) != ndim:
        raise HdlgenError(f"module {path!r} ({kind}) needs {want} but gets shape {xt.shape}{hint}")
    if xt.shape[-1] != size:
        raise HdlgenError(f"module {path!r} ({kind}) has {attr}={size} but its input has {xt.shape[-1]} {unit}")
    if xt.dtype != m.input_dtype:
        raise HdlgenError(f"module {path!r} ({kind}) was configured for {m.input_dtype} inputs but gets {xt.dtype}")


def _dense(g: Graph, tensor: str, m: BinaryDense, path: str, index: int) -> str:
    _check_input(g, tensor, m, path, "a vector input", 1, "in_features", m.in_features, "values",
                 "; put a Flatten before it")
    weight = m.integer_weight()
    if m.activation:
        thresholds, negate = m.integer_thresholds()
        weight = np.where(negate[:, None], -weight, weight).astype(np.int8)
    fc = g.add(f"fc{index}", "dense", tensor, {"weight_dtype": "bipolar"}, {"weight": weight})
    acc = g.node(fc).type.dtype
    if acc != m.accumulator_dtype:
        raise AssertionError(f"{path}: IR accumulator {acc} differs from the layer's {m.accumulator_dtype}")
    if not m.activation:
        return fc
    return g.add(f"act{index}", "threshold", fc, {"out": "bipolar"},
                 {"thresholds": thresholds.reshape(-1, 1).astype(np.int64)})


def _conv(g: Graph, tensor: str, m: BinaryConv2d, path: str, index: int) -> str:
    _check_input(g, tensor, m, path, "an image input (H, W, C)", 3, "in_channels", m.in_channels, "channels")
    weight = m.integer_weight()
    thresholds, negate = m.integer_thresholds()
    weight = np.where(negate[:, None, None, None], -weight, weight).astype(np.int8)
    attrs = {"weight_dtype": "bipolar", "kernel": m.kernel_size, "stride": m.stride, "pad": m.padding,
             "pad_value": m.effective_pad_value}
    name = f"conv{index}"
    conv = g.add(name, "conv2d", tensor, attrs, {"weight": weight})
    acc = g.node(conv).type.dtype
    if acc != m.accumulator_dtype:
        raise AssertionError(f"{path}: IR accumulator {acc} differs from the layer's {m.accumulator_dtype}")
    return g.add(f"{name}_act", "threshold", conv, {"out": "bipolar"},
                 {"thresholds": thresholds.reshape(-1, 1).astype(np.int64)})


def export_checkpoint(path, name: str | None = None) -> Graph:
    """Load a checkpoint file and export it, with the checkpoint's metadata in ``graph.meta``."""
    from .checkpoint import load_checkpoint

    model, ckpt = load_checkpoint(path)
    return export(model, name or ckpt["meta"].get("name") or ckpt["recipe"], graph_meta(ckpt))


def graph_meta(ckpt: dict) -> dict:
    """The part of a checkpoint's metadata that the IR graph carries."""
    meta = ckpt.get("meta", {})
    keep = ("name", "dataset", "classes", "accuracy", "epochs", "source_revision")
    out = {k: meta[k] for k in keep if k in meta}
    out.update({"recipe": ckpt["recipe"], "config": ckpt["config"]})
    return out
