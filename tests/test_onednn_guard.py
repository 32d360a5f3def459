"""Training stays clear of oneDNN's faulty strided 1x1 kernel (see :mod:`hdlgen.nn.conv`).

The crash is in native code, so the training runs in a subprocess with the ISA forced to AVX2
(``ONEDNN_MAX_CPU_ISA``), where any x86 CPU takes the faulty ``jit_1x1:avx2`` kernel: a crash
fails this test and names the signal instead of killing the suite.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hdlgen.nn.conv import Conv2d, conv2d

ROOT = Path(__file__).resolve().parent.parent

# Every layer family through a 1x1 stride-2 convolution with 4 input channels in channels-last
# layout, forward and backward, then the float and binarized ResNet-14 (shortcuts 4 -> 8) for
# a few training steps: the shapes of tests/test_nn_prune.py's pipeline that crashed.
TRAIN_SCRIPT = r"""
import torch
import torch.nn.functional as F
from hdlgen.nn.compress import SignConv2d
from hdlgen.nn.conv import Conv2d
from hdlgen.nn.layers import BinaryConv2d
from hdlgen.nn.recipes import build_model

torch.set_num_threads(1)
torch.manual_seed(0)
for conv in (Conv2d(4, 8, 1, 2, bias=False), SignConv2d(4, 8, 1, 2)):
    for _ in range(20):
        x = torch.randn(16, 32, 32, 4).permute(0, 3, 1, 2).requires_grad_()
        conv(x).square().sum().backward()
binary = BinaryConv2d(4, 8, 1, stride=2, padding=0)
binary.train()
for _ in range(20):
    binary(torch.randn(16, 32, 32, 4).sign().requires_grad_()).sum().backward()
for is_binary in (False, True):
    model, _ = build_model("resnet14", {"widths": [4, 8, 8], "binary": is_binary})
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    for _ in range(5):
        x = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8)
        loss = F.cross_entropy(model(x), torch.randint(0, 10, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
print("trained")
"""


def test_training_survives_onednn_avx2_kernel():
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", TRAIN_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode < 0:
        pytest.fail(f"training died of {signal.Signals(-proc.returncode).name} with ONEDNN_MAX_CPU_ISA=AVX2:\n"
                    f"{proc.stderr[-3000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "trained"


@pytest.mark.parametrize("stride,padding,size", [(2, 0, (9, 8)), ((2, 3), 0, (10, 7)), (3, 1, (8, 8)), (1, 0, (5, 6))])
def test_conv2d_equals_torch_for_1x1_kernels(stride, padding, size):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, *size, dtype=torch.float64, generator=g)
    w = torch.randn(7, 5, 1, 1, dtype=torch.float64, generator=g)
    b = torch.randn(7, dtype=torch.float64, generator=g)
    assert torch.equal(conv2d(x, w, b, stride, padding), F.conv2d(x, w, b, stride, padding))


def test_conv2d_gradients_equal_torch():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64, generator=g)
    w = torch.randn(6, 4, 1, 1, dtype=torch.float64, generator=g)
    grads = []
    for fn in (conv2d, F.conv2d):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        fn(xi, wi, None, 2).square().sum().backward()
        grads.append((xi.grad, wi.grad))
    assert torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1])


def test_other_kernels_are_plain_torch():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=g)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=g)
    assert torch.equal(conv2d(x, w, None, 2, 1), F.conv2d(x, w, None, 2, 1))


def test_conv2d_module_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="groups=1"):
        Conv2d(4, 4, 1, 2, groups=2)
    m = Conv2d(4, 6, 1, 2, bias=True)
    x = torch.randn(2, 4, 7, 7)
    assert torch.allclose(m(x), F.conv2d(x, m.weight, m.bias, 2))
