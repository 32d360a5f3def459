"""Import of QONNX models, as Brevitas exports them, into the integer IR.

``load_qonnx(path)`` reads a ``.onnx`` file and returns an :class:`hdlgen.ir.Graph` that
computes exactly what the model computes on ``pixel / 255`` inputs: binarized weights become
bipolar IR weights, BatchNormalization + binary activation quantizer become integer
thresholds, the per-tensor scale and offset before the output are dropped (the argmax does not
change). See :mod:`.convert` for what is supported.
"""

from __future__ import annotations

from pathlib import Path

from .convert import convert
from .reader import read_onnx

__all__ = ["load_qonnx"]


def load_qonnx(path, name: str | None = None):
    path = Path(path)
    return convert(read_onnx(path), name or path.stem)
