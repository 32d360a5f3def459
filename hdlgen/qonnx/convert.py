"""QONNX, as Brevitas exports it, to the integer IR.

The ONNX nodes are walked in order; every tensor is kept as what it is in integer terms:

- a constant (``np.ndarray``), or binarized weights (:class:`Weights`);
- the input stage before the input quantizer (:class:`~.pixels.Pixels`);
- an IR tensor of integers ``t`` whose value in the model is ``scale * (alpha * t + beta)``
  (:class:`Ints`): the input codes, or bipolar activations (alpha 1, beta 0);
- a layer's accumulator with the float arithmetic after it (:class:`Acc`). Its IR node is
  written once its reader is known: an activation quantizer (a ``threshold`` node follows; a
  channel whose float slope is negative gets its filter negated) or the model's output (the
  ``argmax``).

IR nodes: ``conv<j>`` / ``fc<i>`` (bipolar weights), ``<layer>_act`` (thresholds), ``pool<j>``,
``flatten<n>``, ``cls``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from ..errors import HdlgenError
from ..ir import BIPOLAR, DType, Graph, TensorType, accumulator, uint
from .affine import Affine
from .pixels import FLOAT_OPS, Pixels, bipolar, quant
from .reader import OnnxModel, attrs, label

SUPPORTED = ("Conv, Gemm, MatMul, BatchNormalization, BipolarQuant (weights and activations), Quant (the model "
             "input, 1 to 8 bits; 1-bit signed weights and activations), MaxPool, Reshape, Flatten, "
             "Add/Sub/Mul/Div with a constant, Identity, Dropout")
INPUT_NAME = "image"


@dataclass
class Weights:
    values: np.ndarray  # int8 of -1 and +1, ONNX layout
    scale: np.ndarray   # float64, broadcastable to values


@dataclass
class Ints:
    tensor: str
    scale: float
    alpha: int = 1
    beta: int = 0
    perm: np.ndarray | None = None  # for a flattened image: IR index of each ONNX feature (None: the same)


@dataclass
class Acc:
    kind: str            # "dense" or "conv2d"
    source: str          # the IR tensor it reads
    weight: np.ndarray   # int8, IR layout: (M, N) or (M, K, K, C)
    attrs: dict
    affine: Affine
    node: object         # the ONNX node of the layer
    in_dtype: DType

    @property
    def dtype(self) -> DType:
        return accumulator(int(np.prod(self.weight.shape[1:])), self.in_dtype, BIPOLAR)


def flatten_perm(h: int, w: int, c: int):
    """IR position (row, column, channel fastest) of each feature of an ONNX (C, H, W) flatten."""
    if c == 1:
        return None
    ci, hi, wi = np.unravel_index(np.arange(c * h * w), (c, h, w))
    return (hi * w + wi) * c + ci


class Converter:
    def __init__(self, model: OnnxModel, name: str):
        self.model, self.name = model, name
        self.values = dict(model.constants)
        self.values[model.input_name] = Pixels.start(model.input_shape[0])
        self.readers = Counter(i for n in model.nodes for i in n.input if i)
        self.graph: Graph | None = None
        self.count = Counter()
        self.layers = []

    # -- errors ------------------------------------------------------------------------------
    def fail(self, node, message: str) -> HdlgenError:
        return HdlgenError(f"model {self.model.path}: {label(node)}: {message}")

    def unsupported(self, node, message: str) -> HdlgenError:
        return self.fail(node, f"{message} (hdlgen imports {SUPPORTED})")

    # -- the walk ----------------------------------------------------------------------------
    def run(self) -> Graph:
        for node in self.model.nodes:
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                raise self.unsupported(node, f"op {node.op_type} is not supported")
            ins = []
            for name in node.input:
                if name and name not in self.values:
                    raise self.fail(node, f"reads {name!r}, which no earlier node produces")
                value = self.values.get(name) if name else None
                if isinstance(value, Acc) and self.readers[name] > 1:
                    raise self.fail(node, f"the layer output {name!r} is read by {self.readers[name]} nodes; "
                                          "hdlgen needs each layer's float output to reach one quantizer")
                ins.append(value)
            if ins and all(isinstance(v, np.ndarray) for v in ins if v is not None) and node.op_type in FOLD:
                self.values[node.output[0]] = FOLD[node.op_type](node, *ins)
            else:
                self.values[node.output[0]] = handler(self, node, *ins)
        return self.finish()

    def finish(self) -> Graph:
        out = self.values.get(self.model.output_name)
        if not isinstance(out, Acc) or out.kind != "dense":
            raise HdlgenError(f"model {self.model.path}: the output {self.model.output_name!r} must be the scores "
                              "of a last Gemm or MatMul layer (a per-tensor scale and offset after it are fine)")
        sign = out.affine.argmax_sign(f"model {self.model.path}: {label(out.node)}")
        self.graph.add("cls", "argmax", self.emit(out, np.full(out.weight.shape[0], sign < 0)))
        self.graph.meta["layers"] = self.layers
        self.graph.validate()
        return self.graph

    # -- IR ----------------------------------------------------------------------------------
    def start_graph(self, node, codes, px: Pixels) -> Ints:
        if self.graph is not None:
            raise self.fail(node, "a second quantizer of the model input; hdlgen takes one")
        c, h, w = self.model.input_shape
        identity = codes.bits == 8 and np.array_equal(codes.codes, np.broadcast_to(np.arange(256), codes.codes.shape))
        meta = {"source": f"QONNX {self.model.path.name}", "input_layout": "NHWC",
                "input_scaling": "ONNX model input = uint8 pixel / 255 (float32, NCHW)"}
        if not identity:
            meta["input_map"] = codes.codes.tolist()
            meta["input_scaling"] += (f"; the accelerator reads the {codes.bits}-bit codes of "
                                      f"{label(node)}: input_map[channel][pixel]")
        self.graph = Graph(self.name, INPUT_NAME, TensorType((h, w, c), uint(8 if identity else codes.bits)), meta)
        x = Ints(INPUT_NAME, codes.scale, codes.alpha, codes.beta)
        return self.flatten(node, x) if px.flat else x

    def emit(self, acc: Acc, negate) -> str:
        kind = "conv" if acc.kind == "conv2d" else "fc"
        name = f"{kind}{self.count[kind]}"
        self.count[kind] += 1
        flip = np.asarray(negate).reshape((-1,) + (1,) * (acc.weight.ndim - 1))
        weight = np.where(flip, -acc.weight, acc.weight).astype(np.int8)
        self.graph.add(name, acc.kind, acc.source, {"weight_dtype": "bipolar", **acc.attrs}, {"weight": weight})
        self.layers.append({"onnx": label(acc.node), "ir": name, "in": int(np.prod(weight.shape[1:])),
                            "out": int(weight.shape[0]), **acc.attrs})
        return name

    def activate(self, node, acc: Acc, scale) -> Ints:
        scale = self.scalar(node, scale, "activation scale")
        t, negate = acc.affine.sign_thresholds(acc.dtype)
        layer = self.emit(acc, negate)
        out = self.graph.add(f"{layer}_act", "threshold", layer, {"out": "bipolar"}, {"thresholds": t.reshape(-1, 1)})
        return Ints(out, scale)

    def flatten(self, node, x):
        if isinstance(x, Pixels):
            return replace(x, flat=True)
        if not isinstance(x, Ints):
            raise self.fail(node, "flattens a layer's float output before its quantizer; put the activation "
                                  "quantizer first")
        shape = self.graph.types()[x.tensor].shape
        if len(shape) == 1:
            return x
        name = f"flatten{self.count['flatten']}"
        self.count["flatten"] += 1
        return replace(x, tensor=self.graph.add(name, "flatten", x.tensor), perm=flatten_perm(*shape))

    def onnx_shape(self, x) -> tuple:
        """The ONNX shape (without the batch axis) of a tensor state."""
        if isinstance(x, Pixels):
            c, h, w = self.model.input_shape
            return (c * h * w,) if x.flat else (c, h, w)
        shape = self.graph.types()[x.tensor].shape
        return shape if len(shape) == 1 else (shape[2], shape[0], shape[1])

    # -- constants ---------------------------------------------------------------------------
    def scalar(self, node, value, what: str) -> float:
        v = np.asarray(value, np.float64)
        if v.size != 1 or not (v.reshape(()) > 0) or not np.isfinite(v).all():
            raise self.fail(node, f"the {what} must be one positive number, not {v.reshape(-1)[:4].tolist()} "
                                  f"(shape {v.shape})")
        return float(v.reshape(()))

    def per_channel(self, node, value, channels: int, image: bool, dtype=np.float64) -> np.ndarray:
        v = np.asarray(value)
        if v.size == 1:
            return np.full(channels, v.reshape(()), dtype)
        ok = (channels,) + ((1, 1) if image else ())
        if v.shape in (ok, (1,) + ok):
            return v.reshape(channels).astype(dtype)
        raise self.fail(node, f"a constant of shape {v.shape} is neither one number nor one per channel "
                              f"({channels} channels)")

    def out_scale(self, node, w: Weights, axis: int) -> np.ndarray:
        """The weight scale of each output channel (positive, the same across each filter)."""
        s = np.broadcast_to(w.scale, w.values.shape)
        per = np.moveaxis(s, axis, 0).reshape(s.shape[axis], -1)
        if np.any(per != per[:, :1]) or np.any(~(per[:, 0] > 0)):
            raise self.fail(node, "weight scales must be positive and one per output channel")
        return per[:, 0].astype(np.float64)


# -- handlers ----------------------------------------------------------------------------------

def _weights(cv, node, w):
    if isinstance(w, Weights):
        return w
    what = "float weights" if isinstance(w, np.ndarray) else "weights computed from the input"
    raise cv.unsupported(node, f"has {what}; binarize them with BipolarQuant")


def _layer_input(cv, node, x, ndim: int) -> Ints:
    if isinstance(x, Pixels):
        raise cv.fail(node, "reads the unquantized model input; quantize it first (a Quant of 1 to 8 bits "
                            "or a BipolarQuant between the input and the first layer)")
    if isinstance(x, (np.ndarray, Weights)):
        raise cv.unsupported(node, "reads a constant as its data input")
    if not isinstance(x, Ints):
        raise cv.fail(node, "reads a layer's float output; put an activation quantizer (BipolarQuant) between")
    shape = cv.graph.types()[x.tensor].shape
    if len(shape) != ndim:
        raise cv.fail(node, f"needs {'an image' if ndim == 3 else 'a vector'} but its input has shape "
                            f"{cv.onnx_shape(x)}" + ("; flatten it first" if ndim == 1 else ""))
    return x


def _layer_affine(x: Ints, weight, scale_w, alpha: float = 1.0) -> Affine:
    """The layer's float output in terms of its IR accumulator A over the codes t: the inputs'
    values are alpha_x * t + beta_x, so the output is scale * (alpha_x * A + beta_x * S), S being
    each filter's sum of weights (padding included: padded positions hold the code of zero)."""
    s = weight.reshape(weight.shape[0], -1).sum(axis=1).astype(np.float64)
    return Affine(alpha * x.scale * x.alpha * scale_w, -x.beta * s / x.alpha)


def _conv(cv, node, x, w, bias=None):
    x, w = _layer_input(cv, node, x, 3), _weights(cv, node, w)
    a = attrs(node)
    m, c, kh, kw = w.values.shape
    pads, strides = a.get("pads", [0, 0, 0, 0]), a.get("strides", [1, 1])
    if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])) or \
            a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise cv.unsupported(node, "grouped, dilated or auto-padded convolutions are not supported")
    if kh != kw or len(set(strides)) != 1 or len(set(pads)) != 1:
        raise cv.unsupported(node, f"needs a square kernel and equal strides and pads, not kernel {kh}x{kw}, "
                                   f"strides {strides}, pads {pads}")
    xt = cv.graph.types()[x.tensor]
    if xt.channels != c:
        raise cv.fail(node, f"weights for {c} input channels, its input has {xt.channels}")
    extra = {}
    if pads[0]:
        code = -x.beta / x.alpha  # the code whose value is the zero ONNX pads with
        if code != int(code) or not xt.dtype.holds(np.array([int(code)])):
            raise cv.unsupported(node, f"pads its {xt.dtype} input with zeros (pads {pads}), and zero is not a "
                                       f"value of that input; supported: pads 0 on binary inputs, zero padding "
                                       f"of multi-bit inputs")
        extra["pad_value"] = int(code)
    weight = np.ascontiguousarray(w.values.transpose(0, 2, 3, 1))
    scale_w = cv.out_scale(node, w, 0)
    aff = _layer_affine(x, weight, scale_w)
    if bias is not None:
        aff.add(cv.per_channel(node, bias, m, False), label(node))
    return Acc("conv2d", x.tensor, weight, {"kernel": kh, "stride": strides[0], "pad": pads[0], **extra},
               aff, node, xt.dtype)


def _gemm(cv, node, x, w, bias=None):
    a = attrs(node)
    if a.get("transA", 0):
        raise cv.unsupported(node, "transA=1 is not supported")
    x, w = _layer_input(cv, node, x, 1), _weights(cv, node, w)
    if w.values.ndim != 2:
        raise cv.fail(node, f"needs a weight matrix, not shape {w.values.shape}")
    trans = bool(a.get("transB", 0))
    weight = w.values if trans else w.values.T
    scale_w = cv.out_scale(node, w, 0 if trans else 1)
    xt = cv.graph.types()[x.tensor]
    if weight.shape[1] != xt.shape[0]:
        raise cv.fail(node, f"weights for {weight.shape[1]} inputs, its input has {xt.shape[0]}")
    if x.perm is not None:
        permuted = np.empty_like(weight)
        permuted[:, x.perm] = weight
        weight = permuted
    aff = _layer_affine(x, weight, scale_w, float(a.get("alpha", 1.0)))
    if bias is not None:
        aff.add(float(a.get("beta", 1.0)) * cv.per_channel(node, bias, weight.shape[0], False), label(node))
    return Acc("dense", x.tensor, np.ascontiguousarray(weight), {}, aff, node, xt.dtype)


def _matmul(cv, node, x, w):
    return _gemm(cv, node, x, w)


def _batchnorm(cv, node, x, gamma, beta, mean, var):
    if not isinstance(x, Acc):
        raise cv.unsupported(node, "BatchNormalization must follow a Conv, Gemm or MatMul layer")
    if not all(isinstance(v, np.ndarray) for v in (gamma, beta, mean, var)):
        raise cv.fail(node, "needs constant parameters")
    a = attrs(node)
    if a.get("training_mode", 0):
        raise cv.fail(node, "training_mode=1; export the model in eval mode")
    m = x.weight.shape[0]
    params = [cv.per_channel(node, v, m, False) for v in (gamma, beta, mean, var)]
    x.affine.batchnorm(*params, float(a.get("epsilon", 1e-5)), f"model {cv.model.path}: {label(node)}")
    return x


def _elementwise(cv, node, a, b):
    const_first = isinstance(a, np.ndarray)
    x, c = (b, a) if const_first else (a, b)
    if not isinstance(c, np.ndarray):
        raise cv.unsupported(node, f"{node.op_type} of two computed tensors (a residual connection) is not "
                                   "supported yet")
    op, where = node.op_type, f"model {cv.model.path}: {label(node)}"
    if isinstance(x, Pixels):
        channels = 1 if x.flat else cv.model.input_shape[0]
        return x.apply(op, cv.per_channel(node, c, channels, True, np.float32), const_first)
    if isinstance(x, Acc):
        v = cv.per_channel(node, c, x.weight.shape[0], x.kind == "conv2d")
        if op == "Div" and const_first:
            raise cv.unsupported(node, "divides a constant by a layer's output")
        if op == "Mul":
            x.affine.mul(v, where)
        elif op == "Div":
            x.affine.div(v, where)
        elif op == "Add":
            x.affine.add(v, where)
        elif const_first:  # c - z
            x.affine.mul(-1.0, where)
            x.affine.add(v, where)
        else:
            x.affine.add(-v, where)
        return x
    if isinstance(x, Ints) and op in ("Mul", "Div") and not const_first:
        s = cv.scalar(node, c, "factor on a quantized tensor")
        return replace(x, scale=x.scale * s if op == "Mul" else x.scale / s)
    raise cv.unsupported(node, f"{op} on a quantized tensor is not supported")


def _bipolar_quant(cv, node, x, scale):
    if not isinstance(scale, np.ndarray):
        raise cv.fail(node, "needs a constant scale")
    if isinstance(x, np.ndarray):
        return Weights(np.where(x >= 0, 1, -1).astype(np.int8), np.asarray(scale, np.float64))
    if isinstance(x, Pixels):
        return cv.start_graph(node, bipolar(x, cv.scalar(node, scale, "input scale")), x)
    if isinstance(x, Acc):
        return cv.activate(node, x, scale)
    raise cv.unsupported(node, "quantizes a tensor that is already quantized")


def _quant(cv, node, x, scale, zeropt, bits):
    if not all(isinstance(v, np.ndarray) for v in (scale, zeropt, bits)):
        raise cv.fail(node, "needs a constant scale, zero point and bit width")
    a = attrs(node)
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    nbits = float(bits.reshape(-1)[0]) if bits.size == 1 else float("nan")
    if isinstance(x, Pixels):
        return cv.start_graph(node, quant(x, scale, zeropt, bits, signed, narrow, a.get("rounding_mode", "ROUND"),
                                          f"model {cv.model.path}: {label(node)}"), x)
    binary = nbits == 1 and signed and not np.any(zeropt)
    if isinstance(x, np.ndarray):
        if not binary:
            raise cv.unsupported(node, f"quantizes weights to {nbits:g} bits; the hardware takes binary weights "
                                       "(BipolarQuant, or a signed 1-bit Quant with zero point 0)")
        return Weights(np.where(x / scale >= 0, 1, -1).astype(np.int8), np.asarray(scale, np.float64))
    if isinstance(x, Acc):
        if not binary:
            raise cv.unsupported(node, f"quantizes activations to {nbits:g} bits; supported are binary "
                                       "activations (BipolarQuant, or a signed 1-bit Quant with zero point 0)")
        return cv.activate(node, x, scale)
    raise cv.unsupported(node, "quantizes a tensor that is already quantized")


def _maxpool(cv, node, x):
    if isinstance(x, Acc):
        raise cv.unsupported(node, "MaxPool reads a layer's float output; put it after the activation quantizer")
    x = _layer_input(cv, node, x, 3)
    a = attrs(node)
    k, s = a.get("kernel_shape", [0, 0]), a.get("strides", [1, 1])
    h, w, _ = cv.graph.types()[x.tensor].shape
    exact = all((size - k[0]) % s[0] == 0 for size in (h, w))
    if len(node.output) > 1 or len(set(k)) != 1 or len(set(s)) != 1 or any(a.get("pads", [0])) or \
            any(d != 1 for d in a.get("dilations", [1, 1])) or (a.get("ceil_mode", 0) and not exact):
        raise cv.unsupported(node, f"MaxPool must have a square kernel, equal strides, no padding, no dilation "
                                   f"and no indices output (kernel {k}, strides {s}, pads {a.get('pads')})")
    name = f"pool{cv.count['pool']}"
    cv.count["pool"] += 1
    return replace(x, tensor=cv.graph.add(name, "maxpool", x.tensor, {"kernel": k[0], "stride": s[0]}))


def _reshape(cv, node, x, shape=None):
    if isinstance(x, Acc):
        raise cv.fail(node, "reshapes a layer's float output before its quantizer; put the activation "
                            "quantizer first")
    current = cv.onnx_shape(x)
    if node.op_type == "Flatten":
        if attrs(node).get("axis", 1) != 1:
            raise cv.unsupported(node, "Flatten must keep the batch axis (axis=1)")
        return cv.flatten(node, x)
    if not isinstance(shape, np.ndarray):
        raise cv.fail(node, "needs a constant target shape")
    full = (1,) + current
    target = [full[i] if d == 0 and i < len(full) and not attrs(node).get("allowzero", 0) else int(d)
              for i, d in enumerate(shape.reshape(-1))]
    total = int(np.prod(full))
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = total // known if known and total % known == 0 else -1
    if tuple(target[1:]) == current:
        return x
    if len(target) == 2 and target[1] == total:
        return cv.flatten(node, x)
    raise cv.unsupported(node, f"reshapes {current} to {tuple(shape.reshape(-1).tolist())}; supported are "
                               "flattening an image and reshapes that change nothing")


def _identity(cv, node, x, *rest):
    return x


HANDLERS = {"Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm,
            "Add": _elementwise, "Sub": _elementwise, "Mul": _elementwise, "Div": _elementwise,
            "BipolarQuant": _bipolar_quant, "Quant": _quant, "MaxPool": _maxpool, "Reshape": _reshape,
            "Flatten": _reshape, "Identity": _identity, "Dropout": _identity}

FOLD = {"Identity": lambda node, x: x,
        "Transpose": lambda node, x: np.transpose(x, attrs(node).get("perm")),
        "Reshape": lambda node, x, shape: np.reshape(x, [int(d) for d in shape]),
        **{op: (lambda f: lambda node, a, b: f(a, b))(f) for op, f in FLOAT_OPS.items()}}


def _constant_only(cv, node, *ins):
    raise cv.unsupported(node, f"{node.op_type} of a computed tensor is not supported (only of constants)")


HANDLERS.setdefault("Transpose", _constant_only)


def convert(model: OnnxModel, name: str) -> Graph:
    return Converter(model, name).run()
