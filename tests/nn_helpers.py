"""Shared helpers of the PyTorch-side tests."""

import numpy as np


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
