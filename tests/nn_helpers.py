"""Shared helpers of the PyTorch-side tests."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Torch on one thread (imported by a test module, applies to each of its tests)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_images(n, shape, seed):
    """Random uint8 images, with an all-zero, an all-255 and a one-channel-saturated image first."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n,) + tuple(shape), dtype=np.uint8)
    x[0] = 0
    x[1] = 255
    x[2, ..., 0] = 255
    return x


def int64(t):
    return t.detach().cpu().numpy().astype(np.int64)


def integer_and_float(net, x, outputs):
    """``outputs(net, batch)`` of the integer path and of the float path (``net.float_mode()``)
    after five training-mode passes over ``x`` have moved the BatchNorm statistics."""
    batch = torch.from_numpy(x)
    net.train()
    for _ in range(5):
        net(batch)
    net.eval()
    ints = outputs(net, batch)
    with net.float_mode():
        floats = outputs(net, batch)
    return ints, floats
