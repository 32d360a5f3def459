"""Brevitas models for the QONNX import tests: FINN's TFC-W1A1, a small CNV-style conv net,
a few training steps, QONNX export, and QONNX's own executor as the reference."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def tfc_w1a1():
    """FINN's TFC-W1A1 (784-64-64-64-10, binary input, weights and activations) from brevitas_examples."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    return model_with_cfg("tfc_1w1a", pretrained=False)[0]


class SmallCNV(torch.nn.Module):
    """CNV-style: 2x-1 then an 8-bit Q1.7 input quantizer, binary 3x3 convs (the first zero-padded,
    on 8-bit values) with BatchNorm and binary activations, a max pool, a binary dense layer and
    FINN's TensorNorm before the output."""

    def __init__(self, channels: int = 8, classes: int = 10, size: int = 12):
        from brevitas.core.restrict_val import RestrictValueType
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
        from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
        from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

        super().__init__()
        self.inq = QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0, max_val=1.0 - 2.0 ** -7,
                                 narrow_range=False, restrict_scaling_type=RestrictValueType.POWER_OF_TWO)

        def conv(cin, pad):
            return [QuantConv2d(cin, channels, 3, padding=pad, bias=False, weight_quant=CommonWeightQuant,
                                weight_bit_width=1),
                    torch.nn.BatchNorm2d(channels, eps=1e-4), QuantIdentity(act_quant=CommonActQuant, bit_width=1)]

        self.features = torch.nn.Sequential(*conv(3, 1), torch.nn.MaxPool2d(2), *conv(channels, 0))
        side = size // 2 - 2
        self.fc = QuantLinear(channels * side * side, classes, bias=False, weight_quant=CommonWeightQuant,
                              weight_bit_width=1)
        self.norm = TensorNorm()
        for m in self.modules():
            if isinstance(m, (QuantConv2d, QuantLinear)):
                torch.nn.init.uniform_(m.weight.data, -1, 1)

    def forward(self, x):
        x = self.features(self.inq(2.0 * x - torch.tensor([1.0])))
        return self.norm(self.fc(x.reshape(x.shape[0], -1)))


def train(model, shape, steps: int = 5, seed: int = 0):
    """A few Adam steps on random images and labels (moves weights and BatchNorm statistics)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(steps):
        x = torch.rand((32,) + shape, generator=g)
        y = torch.randint(0, 10, (32,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def export(model, shape, path) -> str:
    from brevitas.export import export_qonnx

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, input_t=torch.rand((1,) + shape), export_path=str(path))
    return str(path)


def executor_labels(path, x: np.ndarray) -> np.ndarray:
    """QONNX's executor on uint8 NHWC images fed as pixel / 255 (float32, NCHW): the argmax of its
    output per image (the first maximum on ties)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    out = []
    for img in x:
        inp = (img.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255))
        out.append(int(np.argmax(execute_onnx(model, {name_in: inp})[name_out].reshape(-1))))
    return np.array(out)


def first_layer(graph):
    """The first dense or conv2d node and its threshold node."""
    layer = next(n for n in graph.nodes if n.op in ("dense", "conv2d"))
    return layer, graph.consumers(layer.name)[0]


def _coefficients(graph, layer, index) -> np.ndarray:
    """(H, W, C) weight of each input code in the accumulator value ``index`` of ``layer``."""
    h, w, c = graph.input_type.shape
    wt = layer.params["weight"].astype(np.int64)
    if layer.op == "dense":
        return wt[index[-1]].reshape(h, w, c)
    k, s, p = layer.attrs["kernel"], layer.attrs.get("stride", 1), layer.attrs.get("pad", 0)
    oy, ox, m = index
    full = np.zeros((h + 2 * p, w + 2 * p, c), np.int64)
    full[oy * s:oy * s + k, ox * s:ox * s + k] = wt[m]
    return full[p:p + h, p:p + w]


def steer(graph, img: np.ndarray, index, target: int, rng, tries: int = 400) -> np.ndarray:
    """Change pixels of ``img`` until the first layer's accumulator value ``index`` equals
    ``target`` (greedy, through the input codes); returns the new image (maybe short of it)."""
    from hdlgen.golden import run
    from hdlgen.model import encode_pixels

    layer, _ = first_layer(graph)
    table = np.asarray(graph.meta.get("input_map", [list(range(256))] * img.shape[-1]), np.int64)
    coef = _coefficients(graph, layer, index)
    img = img.copy()
    acc = int(run(graph, encode_pixels(graph, img[None]))[layer.name][0][index])
    live = np.argwhere(coef != 0)
    for _ in range(tries):
        if acc == target or not len(live):
            break
        y, x, c = live[rng.integers(len(live))]
        delta = coef[y, x, c] * (table[c] - table[c][img[y, x, c]])  # change of acc for each new pixel value
        best = int(np.argmin(np.abs(target - acc - delta)))
        if abs(target - acc - delta[best]) < abs(target - acc):
            acc += int(delta[best])
            img[y, x, c] = best
    return img


def threshold_images(graph, count: int, seed: int) -> np.ndarray:
    """Random images steered so that a random value of the first layer sits exactly on its
    threshold (the smallest accumulator that gives +1) or one below it."""
    rng = np.random.default_rng(seed)
    layer, act = first_layer(graph)
    out = []
    for i in range(count):
        img = rng.integers(0, 256, graph.input_type.shape).astype(np.uint8)
        shape = graph.types()[layer.name].shape
        index = tuple(int(rng.integers(s)) for s in shape)
        t = int(act.params["thresholds"][index[-1], 0])
        out.append(steer(graph, img, index, t - (i % 2), rng))
    return np.stack(out)


def ties(graph, codes: np.ndarray) -> int:
    """How many accumulator values of ``codes`` sit exactly on their threshold (where the float
    value before the quantizer is at or just above zero)."""
    from hdlgen.golden import run

    values = run(graph, codes)
    total = 0
    for n in graph.nodes:
        if n.op == "threshold":
            total += int((values[n.inputs[0]] == n.params["thresholds"][:, 0]).sum())
    return total
