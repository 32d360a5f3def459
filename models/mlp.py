"""Binarized multilayer perceptron (FINN LFC/SFC style).

uint8 image -> flatten -> [binary dense -> BatchNorm -> sign] per hidden layer -> binary dense
output layer whose integer sums are the class scores.
"""

from hdlgen.errors import HdlgenError
from hdlgen.nn.layers import BinaryDense, BinaryNet, Flatten, InputQuant

DEFAULTS = {
    "input_shape": [28, 28, 1],
    "hidden": [256, 256, 256],
    "classes": 10,
}


def build(input_shape=(28, 28, 1), hidden=(256, 256, 256), classes=10):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise HdlgenError(f"mlp: input_shape must be [H, W, C], not {list(input_shape)}")
    if int(classes) < 2:
        raise HdlgenError(f"mlp: classes must be at least 2, not {classes}")
    widths = [shape[0] * shape[1] * shape[2]] + [int(h) for h in hidden]
    layers = [InputQuant(shape), Flatten()]
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers.append(BinaryDense(n_in, n_out))
    layers.append(BinaryDense(widths[-1], int(classes), activation=False))
    return BinaryNet(*layers)
