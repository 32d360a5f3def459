"""Reading an ONNX file: its nodes, constant tensors, one input and one output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import HdlgenError

def label(node) -> str:
    """How error messages name an ONNX node: its op type and name (or its first output)."""
    if node.name:
        return f"{node.op_type} node {node.name!r}"
    return f"{node.op_type} node producing {node.output[0]!r}"


def attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


@dataclass
class OnnxModel:
    path: Path
    nodes: list
    constants: dict      # tensor name -> np.ndarray (initializers and Constant nodes)
    input_name: str
    input_shape: tuple   # without the batch axis
    output_name: str


def read_onnx(path) -> OnnxModel:
    """Parse ``path``; raises HdlgenError for files that are not a one-input, one-output ONNX model."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise HdlgenError(f"model {path}: reading ONNX models needs the onnx package "
                          "(pip install 'onnx==1.23.2', or `pip install -e .[onnx]`)") from None
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises its own DecodeError types
        raise HdlgenError(f"model {path} is not a readable ONNX file: {e}") from None
    g = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            a = n.attribute[0] if len(n.attribute) == 1 else None
            if a is None or a.name != "value":
                raise HdlgenError(f"model {path}: {label(n)}: only tensor-valued Constant nodes are supported")
            constants[n.output[0]] = numpy_helper.to_array(a.t)
        else:
            nodes.append(n)
    inputs = [i for i in g.input if i.name not in constants]
    if len(inputs) != 1 or len(g.output) != 1:
        raise HdlgenError(f"model {path}: expected one input and one output, found {len(inputs)} inputs "
                          f"({', '.join(i.name for i in inputs)}) and {len(g.output)} outputs")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value for d in dims)
    if len(shape) != 4 or not all(shape[1:]):
        raise HdlgenError(f"model {path}: input {inputs[0].name!r} has shape "
                          f"{tuple(d.dim_value or d.dim_param for d in dims)}; expected an image batch "
                          "(N, C, H, W) with fixed C, H, W")
    return OnnxModel(path, nodes, constants, inputs[0].name, shape[1:], g.output[0].name)
