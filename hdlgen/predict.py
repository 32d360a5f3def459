"""``hdlgen predict``: the golden model's labels for the user's own images.

The images are a uint8 array ``x`` in an ``.npz`` file, (N, H, W, C) or (N, H, W) for one
channel, as datasets store them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import HdlgenError


def read_images(path, shape: tuple) -> np.ndarray:
    """The uint8 images of ``path`` as (N, H, W, C) for a model reading (H, W, C) images."""
    path = Path(path)
    if not path.is_file():
        raise HdlgenError(f"images file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise HdlgenError(f"images file {path} is a single .npy array; expected an .npz holding an array 'x'")
            if "x" not in z.files:
                raise HdlgenError(f"images file {path} has no array 'x' (it holds: {', '.join(z.files) or 'nothing'})")
            x = z["x"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise HdlgenError(f"images file {path} is not a readable .npz file: {e}") from None
    if x.dtype != np.uint8:
        raise HdlgenError(f"array 'x' in {path} has dtype {x.dtype}; expected uint8 pixels")
    h, w, c = shape
    images = x[..., None] if x.ndim == 3 and c == 1 else x
    if images.ndim != 4 or images.shape[1:] != (h, w, c):
        alt = f" or N x {h} x {w}" if c == 1 else ""
        raise HdlgenError(f"array 'x' in {path} has shape {x.shape}; the model takes images of shape "
                          f"N x {h} x {w} x {c}{alt}")
    return images


def cli_predict(args) -> int:
    from .golden import classify
    from .model import encode_pixels, load_graph

    loaded = load_graph(args.model)
    shape = loaded.graph.input_type.shape
    if len(shape) != 3:
        raise HdlgenError(f"model {loaded.path} reads vectors of shape {shape}, not images")
    x = read_images(args.images, shape)
    labels = classify(loaded.graph, encode_pixels(loaded.graph, x)).tolist()
    if args.json:
        print(json.dumps({"labels": labels}))
    else:
        for label in labels:
            print(label)
    return 0
