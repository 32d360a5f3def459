"""ResNet-14 for 32x32 images, float or binarized, prunable at filter level.

uint8 image (H, W, C) -> stem conv 3x3 -> three stages of two basic blocks (widths 64 / 128 /
256, the second and third stage start with stride 2 and a 1x1 strided shortcut) -> global
average pooling -> fully connected layer. 1 + 12 convolutions + 1 FC = 14 layers.

A basic block: ``h = act(bn1(conv1(x)))``, ``out = act(bn2(conv2(h)) + shortcut(x))``, with the
identity as shortcut inside a stage and ``bn(conv1x1 stride 2)`` at a stage's start.

Evaluation: ``model.eval()`` runs the float computation (BatchNorm on running statistics);
for the binarized network ``with model.float_mode(False)`` (or ``model.integer_forward``)
runs the integer computation of the exported IR instead, exactly (integer class scores).

``binary=True`` keeps the same parameter names and shapes but uses +-1 weights in every
convolution and the FC layer, sign activations (ReLU in float), -1 padding for +-1 inputs (0
for the pixels of the stem), and a sign after the projection shortcut's BatchNorm, so every
tensor between layers is +-1 and every residual add is ``bn2(A) + s`` with ``A`` an integer
accumulator and ``s`` a +-1 value: a per-channel threshold on ``A`` chosen by ``s``.

Options: ``widths`` (stage widths; the stem has the first stage's width, tied to it by the
identity shortcuts), ``width`` (a multiplier applied to ``widths``), ``inner`` (the width of
each block's first convolution, six numbers; default: its stage's width, scaled).
"""

import contextlib

import torch
from torch import nn

from hdlgen.errors import HdlgenError
from hdlgen.nn.compress import SignConv2d, SignFC, SignActivation
from hdlgen.nn.conv import Conv2d
from hdlgen.nn.export_resnet import integer_forward

DEFAULTS = {
    "input_shape": [32, 32, 3],
    "classes": 10,
    "widths": [64, 128, 256],
    "width": 1.0,
    "inner": None,
    "binary": False,
}


def _conv(cin, cout, k, stride, binary, pad_value=-1.0):
    if binary:
        return SignConv2d(cin, cout, k, stride, k // 2, pad_value=pad_value)
    return Conv2d(cin, cout, k, stride, k // 2, bias=False)


def _act(binary):
    return SignActivation() if binary else nn.ReLU()


class BasicBlock(nn.Module):
    def __init__(self, cin, mid, cout, stride, binary):
        super().__init__()
        self.conv1 = _conv(cin, mid, 3, stride, binary)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act1 = _act(binary)
        self.conv2 = _conv(mid, cout, 3, 1, binary)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            parts = [_conv(cin, cout, 1, stride, binary), nn.BatchNorm2d(cout)]
            if binary:
                parts.append(SignActivation())
            self.shortcut = nn.Sequential(*parts)
        else:
            self.shortcut = nn.Identity()
        self.act2 = _act(binary)

    def forward(self, x):
        h = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet14(nn.Module):
    def __init__(self, input_shape, classes, widths, inner, binary):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.binary = bool(binary)
        self.float_reference = True
        h, w, c = self.input_shape
        self.stem = _conv(c, widths[0], 3, 1, binary, pad_value=0.0)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        self.stem_act = _act(binary)
        stages, cin, k = [], widths[0], 0
        for s, cout in enumerate(widths):
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(cin, inner[k], cout, 2 if (s and not b) else 1, binary))
                cin, k = cout, k + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = SignFC(widths[-1], classes) if binary else nn.Linear(widths[-1], classes, bias=False)

    def forward(self, x):
        if self.binary and not self.training and not self.float_reference:
            return integer_forward(self, x)
        x = x.permute(0, 3, 1, 2).to(self.stem.weight.dtype) / 255
        x = self.stem_act(self.stem_bn(self.stem(x)))
        x = self.stages(x)
        return self.fc(self.pool(x).flatten(1))

    def integer_forward(self, x, keep: bool = False):
        """The exported IR's integer computation (binarized network only): class scores, or
        with ``keep`` every IR tensor by node name (see :mod:`hdlgen.nn.export_resnet`)."""
        return integer_forward(self, x, keep=keep)

    @contextlib.contextmanager
    def float_mode(self, enabled: bool = True):
        """Within the block, evaluation (``eval()``) is the float computation (``enabled``) or,
        for the binarized network, the integer one of the IR. Outside it is the float one."""
        before = self.float_reference
        self.float_reference = bool(enabled)
        try:
            yield self
        finally:
            self.float_reference = before

    @torch.no_grad()
    def clip_weights(self, bound: float = 1.0):
        if not self.binary:
            return
        for m in self.modules():
            if getattr(m, "binary_weights", False):
                m.weight.clamp_(-bound, bound)


def _widths(widths, width, inner):
    widths = [int(w) for w in widths]
    if len(widths) != 3 or any(w < 1 for w in widths):
        raise HdlgenError(f"resnet14: widths must be three positive stage widths, not {widths}")
    if not float(width) > 0:
        raise HdlgenError(f"resnet14: width multiplier must be positive, not {width}")
    scaled = [max(1, round(float(width) * w)) for w in widths]
    if inner is None:
        inner = [w for w in scaled for _ in range(2)]
    else:
        inner = [max(1, round(float(width) * int(w))) for w in inner]
        if len(inner) != 6:
            raise HdlgenError(f"resnet14: inner must hold six widths (one per block), not {inner}")
    return scaled, inner


def build(input_shape=(32, 32, 3), classes=10, widths=(64, 128, 256), width=1.0, inner=None, binary=False):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise HdlgenError(f"resnet14: input_shape must be [H, W, C], not {list(input_shape)}")
    if int(classes) < 2:
        raise HdlgenError(f"resnet14: classes must be at least 2, not {classes}")
    scaled, inner = _widths(widths, width, inner)
    return ResNet14(shape, int(classes), scaled, inner, binary)


def pruned_config(model, config):
    """The configuration that rebuilds ``model`` (a possibly pruned ResNet14) with its shapes."""
    blocks = [b for stage in model.stages for b in stage]
    out = dict(config)
    out["widths"] = [stage[-1].conv2.out_channels for stage in model.stages]
    out["inner"] = [b.conv1.out_channels for b in blocks]
    out["width"] = 1.0
    out.pop("binary", None)
    return out
