"""Binarized CNV-class convolutional network (FINN's CNV topology), with a width multiplier.

uint8 RGB image 32x32x3 -> conv 3x3 (64) -> conv 3x3 (64) -> maxpool 2 -> conv 3x3 (128) ->
conv 3x3 (128) -> maxpool 2 -> conv 3x3 (256) -> conv 3x3 (256) -> flatten -> binary dense 512
-> binary dense 512 -> binary dense output layer (10 class scores) -> argmax.

Every convolution is 3x3, stride 1, without padding (32 -> 30 -> 28 -> 14 -> 12 -> 10 -> 5 -> 3
-> 1), has binary weights and BatchNorm + sign folded into integer thresholds. The first
convolution reads the raw 8-bit pixels. ``width`` scales every channel and neuron count
(``width`` 1 is FINN's CNV; 0.25 or 0.5 give short CPU configurations).
"""

from hdlgen.errors import HdlgenError
from hdlgen.nn.layers import BinaryConv2d, BinaryDense, BinaryNet, Flatten, InputQuant, MaxPool

DEFAULTS = {
    "input_shape": [32, 32, 3],
    "classes": 10,
    "width": 1.0,
    "conv": [64, 64, "pool", 128, 128, "pool", 256, 256],
    "fc": [512, 512],
    "kernel": 3,
}


def _scaled(n, width):
    return max(1, int(round(n * width)))


def build(input_shape=(32, 32, 3), classes=10, width=1.0, conv=(64, 64, "pool", 128, 128, "pool", 256, 256),
          fc=(512, 512), kernel=3):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise HdlgenError(f"cnv: input_shape must be [H, W, C], not {list(input_shape)}")
    if int(classes) < 2:
        raise HdlgenError(f"cnv: classes must be at least 2, not {classes}")
    if not float(width) > 0:
        raise HdlgenError(f"cnv: width must be positive, not {width}")
    layers = [InputQuant(shape)]
    h, w, c = shape
    for item in conv:
        if item == "pool":
            layers.append(MaxPool(2))
            h, w = h // 2, w // 2
            continue
        if not isinstance(item, int) or isinstance(item, bool) or item < 1:
            raise HdlgenError(f"cnv: conv entries must be channel counts or 'pool', not {item!r}")
        out = _scaled(item, width)
        layers.append(BinaryConv2d(c, out, int(kernel)))
        h, w, c = h - int(kernel) + 1, w - int(kernel) + 1, out
        if h < 1 or w < 1:
            raise HdlgenError(f"cnv: the convolutions shrink the {shape[0]}x{shape[1]} input below 1x1")
    layers.append(Flatten())
    n = h * w * c
    for item in fc:
        out = _scaled(int(item), width)
        layers.append(BinaryDense(n, out))
        n = out
    layers.append(BinaryDense(n, int(classes), activation=False))
    return BinaryNet(*layers)
