"""QONNX import: Brevitas models exported with brevitas, imported by hdlgen; the golden model
must give QONNX's executor's class on every image."""

import json

import numpy as np
import pytest

pytest.importorskip("brevitas", reason="brevitas is not installed (pip install -e '.[test]')")
pytest.importorskip("qonnx", reason="qonnx is not installed (pip install -e '.[test]')")

import torch  # noqa: E402

import qonnx_helpers as H  # noqa: E402
from hdlgen.cli import main  # noqa: E402
from hdlgen.errors import HdlgenError  # noqa: E402
from hdlgen.golden import classify  # noqa: E402
from hdlgen.model import encode_pixels, load_graph  # noqa: E402
from hdlgen.qonnx import load_qonnx  # noqa: E402

TFC = (1, 28, 28)
CNV = (3, 12, 12)
MODELS = {"tfc-random": (H.tfc_w1a1, TFC, 0), "tfc-trained": (H.tfc_w1a1, TFC, 8),
          "cnv-random": (H.SmallCNV, CNV, 0), "cnv-trained": (H.SmallCNV, CNV, 8)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> path of each model in MODELS, exported once for the module."""
    root = tmp_path_factory.mktemp("qonnx")
    out = {}
    for i, (name, (make, shape, steps)) in enumerate(MODELS.items()):
        torch.manual_seed(i)
        model = make()
        if steps:
            H.train(model, shape, steps, seed=i)
        out[name] = H.export(model.eval(), shape, root / f"{name}.onnx")
    return out


def _images(graph, seed: int) -> np.ndarray:
    """Random images, images of pixels next to the input quantizer's steps (127/128 for a
    binary input), and images steered onto the first layer's thresholds."""
    rng = np.random.default_rng(seed)
    shape = graph.input_type.shape
    rand = rng.integers(0, 256, (16,) + shape).astype(np.uint8)
    steps = rng.choice(np.array([0, 1, 126, 127, 128, 129, 254, 255], np.uint8), (8,) + shape)
    return np.concatenate([rand, steps, H.threshold_images(graph, 16, seed)])


@pytest.mark.parametrize("name", list(MODELS))
def test_golden_equals_qonnx_executor(exported, name):
    graph = load_qonnx(exported[name])
    x = _images(graph, seed=len(name))
    codes = encode_pixels(graph, x)
    golden = classify(graph, codes)
    reference = H.executor_labels(exported[name], x)
    assert golden.tolist() == reference.tolist()
    assert H.ties(graph, codes) > 0  # some values sat exactly on a threshold
    assert graph.output == "cls" and graph.nodes[-1].op == "argmax"


def test_first_layer_reads_the_pixels_when_the_quantizer_is_the_identity(tmp_path):
    """An unsigned 8-bit input quantizer with scale 1/255: no input map, the codes are the pixels."""
    from brevitas.nn import QuantIdentity, QuantLinear
    from brevitas.quant import Uint8ActPerTensorFloat
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inq = QuantIdentity(act_quant=Uint8ActPerTensorFloat, scaling_impl_type="const",
                                     scaling_init=1.0)
            self.fc0 = QuantLinear(64, 16, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)
            self.bn = torch.nn.BatchNorm1d(16)
            self.act = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
            self.fc1 = QuantLinear(16, 10, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)

        def forward(self, x):
            return self.fc1(self.act(self.bn(self.fc0(self.inq(x).reshape(x.shape[0], -1)))))

    torch.manual_seed(5)
    path = H.export(H.train(Net(), (1, 8, 8)), (1, 8, 8), tmp_path / "u8.onnx")
    graph = load_qonnx(path)
    assert "input_map" not in graph.meta and str(graph.input_type.dtype) == "uint8"
    x = _images(graph, seed=5)
    assert classify(graph, x).tolist() == H.executor_labels(path, x).tolist()


def test_predict_equals_qonnx_executor(exported, tmp_path, capsys):
    path = exported["cnv-trained"]
    x = np.random.default_rng(3).integers(0, 256, (12, 12, 12, 3)).astype(np.uint8)
    np.savez(tmp_path / "imgs.npz", x=x)
    assert main(["predict", "--model", path, "--images", str(tmp_path / "imgs.npz"), "--json"]) == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert labels == H.executor_labels(path, x).tolist()


def test_predict_takes_one_channel_images_without_the_channel_axis(exported, tmp_path, capsys):
    x = np.random.default_rng(4).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "mnist.npz", x=x)
    assert main(["predict", "--model", exported["tfc-trained"], "--images", str(tmp_path / "mnist.npz")]) == 0
    labels = [int(v) for v in capsys.readouterr().out.split()]
    assert labels == H.executor_labels(exported["tfc-trained"], x[..., None]).tolist()


def test_samples_beside_the_model_are_encoded(exported, tmp_path):
    """sim and build read samples.npz beside the model; for a model with an input map they get codes."""
    import shutil

    path = shutil.copy(exported["tfc-random"], tmp_path / "net.onnx")
    x = np.array([[[0, 127], [128, 255]]], np.uint8)[..., None].repeat(14, 1).repeat(14, 2)
    np.savez(tmp_path / "samples.npz", x=x, y=np.zeros(1, np.int64))
    loaded = load_graph(str(path))
    assert loaded.samples[0].tolist() == (x >= 128).astype(np.uint8).tolist()


# -- what is not supported: one clear error naming the node ------------------------------------

def _brevitas_error(tmp_path, net, shape, *words):
    path = H.export(net.eval(), shape, tmp_path / "bad.onnx")
    with pytest.raises(HdlgenError) as e:
        load_qonnx(path)
    msg = str(e.value)
    assert "node" in msg and all(w in msg for w in words), msg
    assert main(["predict", "--model", path, "--images", str(tmp_path / "none.npz")]) == 1
    return msg


def _mlp(weight_bits=1, act_bits=1, bias=False):
    from brevitas.nn import QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inq = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
            self.fc0 = QuantLinear(16, 8, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=weight_bits)
            self.act = QuantIdentity(act_quant=CommonActQuant, bit_width=act_bits)
            self.fc1 = QuantLinear(8, 4, bias=bias, weight_quant=CommonWeightQuant, weight_bit_width=1)

        def forward(self, x):
            return self.fc1(self.act(self.fc0(self.inq(x).reshape(x.shape[0], -1))))

    return Net()


def test_three_bit_weights_are_refused(tmp_path, capsys):
    msg = _brevitas_error(tmp_path, _mlp(weight_bits=3), (1, 4, 4), "Quant", "3 bits", "binary weights")
    assert "error:" in capsys.readouterr().err


def test_multi_bit_activations_are_refused(tmp_path):
    _brevitas_error(tmp_path, _mlp(act_bits=2), (1, 4, 4), "Quant", "2 bits", "activations")


def test_per_class_output_bias_is_refused(tmp_path):
    _brevitas_error(tmp_path, _mlp(bias=True), (1, 4, 4), "Gemm", "per class")


def test_zero_padding_of_binary_inputs_is_refused(tmp_path):
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inq = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
            self.conv = QuantConv2d(1, 4, 3, padding=1, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)
            self.act = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
            self.fc = QuantLinear(64, 4, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)

        def forward(self, x):
            return self.fc(self.act(self.conv(self.inq(x))).reshape(x.shape[0], -1))

    _brevitas_error(tmp_path, Net(), (1, 4, 4), "Conv", "pads", "zero")


def test_unsupported_op_is_named(tmp_path):
    from brevitas.nn import QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inq = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
            self.fc = QuantLinear(16, 4, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)

        def forward(self, x):
            return torch.sigmoid(self.fc(self.inq(x).reshape(x.shape[0], -1)))

    _brevitas_error(tmp_path, Net(), (1, 4, 4), "Sigmoid", "not supported", "BipolarQuant")
