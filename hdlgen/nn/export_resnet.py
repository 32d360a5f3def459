"""Export a binarized residual network (the ``resnet14`` recipe with ``binary=True``, pruned or
not) to the integer IR, and the PyTorch integer path that computes exactly what the IR does.

Graph (node names; every tensor between layers is bipolar)::

    image      uint8 (H, W, C)
    stem       conv2d 3x3, pad 1, pad_value 0 (the pixels)       -> stem_act  threshold
    per block s<i>b<j> (stage i, block j):
      s<i>b<j>_conv1  conv2d 3x3, stride 1 or 2, pad 1, pad_value -1 -> s<i>b<j>_act1 threshold
      s<i>b<j>_conv2  conv2d 3x3, pad 1, pad_value -1
      shortcut: the block input (identity), or for a projection
      s<i>b<j>_sc     conv2d 1x1, stride 2, pad 0                   -> s<i>b<j>_sc_act threshold
      s<i>b<j>_add    select_threshold(s<i>b<j>_conv2, shortcut)
    pool       globalsum (H', W', C) -> (C,)
    fc         dense, bipolar weights (classes, C), no bias
    cls        argmax

``sign(bn(A))`` folds into one threshold per channel (:func:`~hdlgen.nn.layers.bn_sign_thresholds`;
the stem's accumulator is 255 times the float model's, whose input is pixel / 255), the
residual ``sign(bn2(A) + s)`` into two thresholds per channel chosen by the shortcut value
``s`` (:func:`~hdlgen.nn.compress.residual_sign_thresholds`). A channel with a negative
BatchNorm scale has its filter negated, so its accumulator is ``-A``. The global average
pooling becomes a sum and the output layer's positive scale is dropped: neither changes the
argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HdlgenError
from ..ir import BIPOLAR, Graph, accumulator
from .compress import SignActivation, SignConv2d, SignFC, residual_sign_thresholds
from .conv import conv2d
from .layers import PIXEL, PIXEL_SCALE, bn_sign_thresholds

INPUT_NAME = "image"


def is_resnet(model) -> bool:
    """True for models built by a residual recipe (a stem and stages of blocks)."""
    return isinstance(model, nn.Module) and hasattr(model, "stem") and hasattr(model, "stages")


@dataclass
class IntConv:
    """One binarized convolution in integer form: int8 +-1 weights (M, C, K, K) with the
    negated filters already negated, and the thresholds of the activation that reads it."""

    name: str
    path: str
    weight: np.ndarray
    stride: int
    pad: int
    pad_value: int
    thresholds: np.ndarray  # (M, 1) for a threshold, (M, 2) for a select_threshold
    acc: object  # the accumulator DType

    @property
    def kernel(self) -> int:
        return self.weight.shape[2]


def _fail(path, m, want):
    return HdlgenError(f"cannot export module {path!r} of type {type(m).__name__}: expected {want} "
                       "(a binarized resnet: build the recipe with binary=True)")


def _need(m, path, kind, want):
    if not isinstance(m, kind):
        raise _fail(path, m, want)
    return m


def _conv_geometry(m: SignConv2d, path: str, in_dtype) -> tuple:
    k, s, p = m.kernel_size, m.stride, m.padding
    if len(set(k)) != 1 or len(set(s)) != 1 or (isinstance(p, tuple) and len(set(p)) != 1):
        raise HdlgenError(f"module {path!r}: only square kernels, strides and paddings are supported")
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.bias is not None:
        raise HdlgenError(f"module {path!r}: grouped, dilated or biased convolutions are not supported")
    pad = p[0] if isinstance(p, tuple) else int(p)
    pv = m.pad_value
    if pad and (pv != int(pv) or not in_dtype.holds(np.array([int(pv)]))):
        raise HdlgenError(f"module {path!r}: pad_value {pv:g} is not a {in_dtype} value")
    return k[0], s[0], pad, int(pv) if pad else int(in_dtype.min)


def _bn(m, path, channels):
    _need(m, path, nn.BatchNorm2d, "BatchNorm2d")
    if m.num_features != channels:
        raise HdlgenError(f"module {path!r}: BatchNorm2d of {m.num_features} channels after a "
                          f"convolution of {channels}")
    if m.running_mean is None or m.running_var is None or m.weight is None:
        raise HdlgenError(f"module {path!r}: BatchNorm2d needs affine parameters and running statistics")
    return m


def _bn_arrays(bn):
    return [t.detach().double().cpu().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]


def _sign_conv(name, path, conv, bn, in_dtype, input_scale=1, residual=False) -> IntConv:
    _need(conv, path, SignConv2d, "SignConv2d")
    k, s, p, pv = _conv_geometry(conv, path, in_dtype)
    acc = accumulator(k * k * conv.in_channels, in_dtype, BIPOLAR)
    if residual:
        t, negate = residual_sign_thresholds(bn, k * k * conv.in_channels)
    else:
        gamma, beta, mean, var = _bn_arrays(bn)
        t, negate = bn_sign_thresholds(gamma, beta, mean, var, bn.eps, input_scale, acc)
        t = t.reshape(-1, 1)
    w = conv.integer_weight()
    w = np.where(negate[:, None, None, None], -w, w).astype(np.int8)
    return IntConv(name, path, w, s, p, pv, t.astype(np.int64), acc)


def integer_layers(model) -> dict:
    """The integer form of a binarized resnet: ``{"input_shape", "stem", "blocks", "fc"}``.

    ``stem``: an :class:`IntConv`; ``blocks``: per block ``{"name", "conv1", "conv2", "sc"}``
    (``sc`` None for the identity shortcut; ``conv2`` carries the (C, 2) residual thresholds);
    ``fc``: int8 (classes, C). Raises :class:`HdlgenError` for anything else."""
    if not is_resnet(model):
        raise HdlgenError(f"cannot export a {type(model).__name__} as a residual network")
    if not getattr(model, "binary", False):
        raise HdlgenError("cannot export a float resnet: only the binarized network (recipe option "
                          "binary=True) has an integer form")
    shape = tuple(int(v) for v in model.input_shape)
    _need(model.stem_act, "stem_act", SignActivation, "SignActivation")
    _need(model.stem_bn, "stem_bn", nn.BatchNorm2d, "BatchNorm2d")
    _need(model.stem, "stem", SignConv2d, "SignConv2d")
    if model.stem.in_channels != shape[2]:
        raise HdlgenError(f"module 'stem' reads {model.stem.in_channels} channels but the input has {shape[2]}")
    stem = _sign_conv("stem", "stem", model.stem, _bn(model.stem_bn, "stem_bn", model.stem.out_channels),
                      PIXEL, PIXEL_SCALE)
    if stem.pad and stem.pad_value != 0:
        raise HdlgenError(f"module 'stem': pad_value {stem.pad_value} must be 0 (the pixel padding)")
    blocks, channels = [], model.stem.out_channels
    _need(model.stages, "stages", nn.Sequential, "Sequential of stages")
    for i, stage in enumerate(model.stages):
        _need(stage, f"stages.{i}", nn.Sequential, "Sequential of blocks")
        for j, b in enumerate(stage):
            p, name = f"stages.{i}.{j}", f"s{i}b{j}"
            for attr, kind, want in (("conv1", SignConv2d, "SignConv2d"), ("bn1", nn.BatchNorm2d, "BatchNorm2d"),
                                     ("act1", SignActivation, "SignActivation"),
                                     ("conv2", SignConv2d, "SignConv2d"), ("bn2", nn.BatchNorm2d, "BatchNorm2d"),
                                     ("act2", SignActivation, "SignActivation")):
                if not hasattr(b, attr):
                    raise HdlgenError(f"module {p!r} ({type(b).__name__}) has no {attr}: not a basic block")
                _need(getattr(b, attr), f"{p}.{attr}", kind, want)
            if b.conv1.in_channels != channels:
                raise HdlgenError(f"module {p}.conv1 reads {b.conv1.in_channels} channels, its input has {channels}")
            if b.conv2.in_channels != b.conv1.out_channels:
                raise HdlgenError(f"module {p}.conv2 reads {b.conv2.in_channels} channels, conv1 makes "
                                  f"{b.conv1.out_channels}")
            conv1 = _sign_conv(f"{name}_conv1", f"{p}.conv1", b.conv1, _bn(b.bn1, f"{p}.bn1", b.conv1.out_channels),
                               BIPOLAR)
            conv2 = _sign_conv(f"{name}_conv2", f"{p}.conv2", b.conv2, _bn(b.bn2, f"{p}.bn2", b.conv2.out_channels),
                               BIPOLAR, residual=True)
            if conv2.stride != 1:
                raise HdlgenError(f"module {p}.conv2: stride {conv2.stride}; a block downsamples in conv1")
            sc = None
            if isinstance(b.shortcut, nn.Identity):
                if conv1.stride != 1 or b.conv2.out_channels != channels:
                    raise HdlgenError(f"module {p}: an identity shortcut needs stride 1 and {channels} "
                                      f"output channels, the block has stride {conv1.stride} and "
                                      f"{b.conv2.out_channels}")
            else:
                parts = list(b.shortcut) if isinstance(b.shortcut, nn.Sequential) else [b.shortcut]
                if len(parts) != 3:
                    raise _fail(f"{p}.shortcut", b.shortcut,
                                "Identity or Sequential(SignConv2d, BatchNorm2d, SignActivation)")
                _need(parts[0], f"{p}.shortcut.0", SignConv2d, "SignConv2d")
                _need(parts[2], f"{p}.shortcut.2", SignActivation, "SignActivation")
                if parts[0].in_channels != channels or parts[0].out_channels != b.conv2.out_channels:
                    raise HdlgenError(f"module {p}.shortcut.0 maps {parts[0].in_channels} -> "
                                      f"{parts[0].out_channels} channels, the block {channels} -> "
                                      f"{b.conv2.out_channels}")
                sc = _sign_conv(f"{name}_sc", f"{p}.shortcut.0", parts[0],
                                _bn(parts[1], f"{p}.shortcut.1", parts[0].out_channels), BIPOLAR)
                if sc.stride != conv1.stride:
                    raise HdlgenError(f"module {p}.shortcut.0: stride {sc.stride} differs from conv1's {conv1.stride}")
            blocks.append({"name": name, "path": p, "conv1": conv1, "conv2": conv2, "sc": sc})
            channels = b.conv2.out_channels
    pool = getattr(model, "pool", None)
    if not isinstance(pool, nn.AdaptiveAvgPool2d) or pool.output_size not in (1, (1, 1)):
        raise _fail("pool", pool, "AdaptiveAvgPool2d(1)")
    fc = _need(model.fc, "fc", SignFC, "SignFC (the binarized output layer)")
    if fc.in_features != channels:
        raise HdlgenError(f"module 'fc' reads {fc.in_features} values, the last stage has {channels} channels")
    if fc.bias is not None:
        raise HdlgenError("module 'fc': the output layer must have no bias")
    return {"input_shape": shape, "stem": stem, "blocks": blocks, "fc": fc.integer_weight()}


# -- the IR ------------------------------------------------------------------------------------

def _add_conv(g: Graph, tensor: str, c: IntConv) -> str:
    attrs = {"weight_dtype": "bipolar", "kernel": c.kernel, "stride": c.stride, "pad": c.pad,
             "pad_value": c.pad_value}
    out = g.add(c.name, "conv2d", tensor, attrs, {"weight": np.ascontiguousarray(c.weight.transpose(0, 2, 3, 1))})
    acc = g.node(out).type.dtype
    if acc != c.acc:
        raise AssertionError(f"{c.path}: IR accumulator {acc} differs from the folded {c.acc}")
    return out


def _threshold(g: Graph, name: str, tensor: str, c: IntConv) -> str:
    return g.add(name, "threshold", tensor, {"out": "bipolar"}, {"thresholds": c.thresholds})


def export_resnet(model, name: str, meta: dict | None = None) -> Graph:
    """The IR graph of a binarized resnet (see the module docstring for its nodes)."""
    from .export import new_graph

    layers = integer_layers(model)
    g = new_graph(name, layers["input_shape"], meta)
    stem = layers["stem"]
    x = _threshold(g, "stem_act", _add_conv(g, INPUT_NAME, stem), stem)
    described = [_describe(stem, "stem_act")]
    for b in layers["blocks"]:
        n = b["name"]
        h = _threshold(g, f"{n}_act1", _add_conv(g, x, b["conv1"]), b["conv1"])
        acc = _add_conv(g, h, b["conv2"])
        if b["sc"] is None:
            s = x
        else:
            s = _threshold(g, f"{n}_sc_act", _add_conv(g, x, b["sc"]), b["sc"])
        x = g.add(f"{n}_add", "select_threshold", [acc, s], {}, {"thresholds": b["conv2"].thresholds})
        described.append({"block": n, "module": b["path"], "shortcut": "identity" if b["sc"] is None else f"{n}_sc",
                          "conv1": _describe(b["conv1"], f"{n}_act1"), "conv2": _describe(b["conv2"], f"{n}_add"),
                          **({"sc": _describe(b["sc"], f"{n}_sc_act")} if b["sc"] is not None else {})})
    pooled = g.add("pool", "globalsum", x)
    fc = g.add("fc", "dense", pooled, {"weight_dtype": "bipolar"}, {"weight": layers["fc"]})
    g.add("cls", "argmax", fc)
    described.append({"module": "fc", "dense": "fc", "in": int(layers["fc"].shape[1]),
                      "out": int(layers["fc"].shape[0])})
    g.meta.setdefault("layers", described)
    g.validate()
    return g


def _describe(c: IntConv, act: str) -> dict:
    return {"module": c.path, "conv2d": c.name, "activation": act, "in": int(c.weight.shape[1]),
            "out": int(c.weight.shape[0]), "kernel": c.kernel, "stride": c.stride, "pad": c.pad,
            "pad_value": c.pad_value}


# -- the PyTorch integer path -------------------------------------------------------------------

def _torch_conv(x, c: IntConv):
    """Exact integer accumulator of ``c`` on ``x`` (N, C, H, W) float64."""
    if c.pad:
        x = F.pad(x, (c.pad,) * 4, value=float(c.pad_value))
    w = torch.from_numpy(c.weight).to(x.device, torch.float64)
    return conv2d(x, w, stride=c.stride)  # integer sums far below 2**53: exact


def _torch_threshold(acc, c: IntConv):
    t = torch.from_numpy(c.thresholds[:, 0]).to(acc.device, torch.float64)[None, :, None, None]
    return torch.where(acc >= t, 1.0, -1.0).to(torch.float64)


@torch.no_grad()
def integer_forward(model, x, keep: bool = False):
    """The IR's computation in PyTorch (float64, exact): ``x`` uint8 (N, H, W, C).

    Returns the integer class scores (N, classes) as float64; with ``keep`` a dict from IR
    tensor name to int64 NumPy array (channels last, as the golden executor), instead."""
    layers = integer_layers(model)
    x = torch.as_tensor(x)
    if tuple(x.shape[1:]) != layers["input_shape"]:
        raise HdlgenError(f"input batch must have shape (N, {', '.join(map(str, layers['input_shape']))}), "
                          f"got {tuple(x.shape)}")
    device = next(model.parameters()).device
    x = x.to(device, torch.float64)
    if x.numel() and (x.min() < 0 or x.max() > 255 or not torch.equal(x, torch.round(x))):
        raise HdlgenError("input pixels must be integers in 0 .. 255")
    out = {}

    def put(name, t):
        if keep:
            v = t.permute(0, 2, 3, 1) if t.dim() == 4 else t
            out[name] = v.cpu().numpy().astype(np.int64)
        return t

    x = x.permute(0, 3, 1, 2)
    put(INPUT_NAME, x)
    stem = layers["stem"]
    x = put("stem_act", _torch_threshold(put("stem", _torch_conv(x, stem)), stem))
    for b in layers["blocks"]:
        n = b["name"]
        h = put(f"{n}_act1", _torch_threshold(put(f"{n}_conv1", _torch_conv(x, b["conv1"])), b["conv1"]))
        acc = put(f"{n}_conv2", _torch_conv(h, b["conv2"]))
        if b["sc"] is None:
            s = x
        else:
            s = put(f"{n}_sc_act", _torch_threshold(put(f"{n}_sc", _torch_conv(x, b["sc"])), b["sc"]))
        t = torch.from_numpy(b["conv2"].thresholds).to(acc.device, torch.float64)
        chosen = torch.where(s > 0, t[None, :, 1, None, None], t[None, :, 0, None, None])
        x = put(f"{n}_add", torch.where(acc >= chosen, 1.0, -1.0).to(torch.float64))
    pooled = x.sum(dim=(2, 3))
    scores = pooled @ torch.from_numpy(layers["fc"]).to(pooled.device, torch.float64).T
    if not keep:
        return scores
    put("pool", pooled)
    put("fc", scores)
    out["cls"] = scores.argmax(1, keepdim=True).cpu().numpy().astype(np.int64)
    return out
