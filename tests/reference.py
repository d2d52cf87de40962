"""Independent reference implementations: what the tests compare the package's fast code against.

Written the plain way, separately from the package's fast code, so that a
test comparing the two compares two computations, not one with itself.
"""

from __future__ import annotations

import numpy as np


def bilinear(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float64 bilinear resize of ``probs`` (h, w) to ``size`` (H, W), pixel by pixel.

    Half-pixel centres (``align_corners=False``, as Pillow, OpenCV and
    ``tf.image.resize`` use) with edge clamping: output pixel ``o`` samples
    input coordinate ``(o + 0.5) * n_in / n_out - 0.5``. This is the
    definition ``carmask.masks.upsample.mean_mask`` thresholds.
    """
    h, w = probs.shape
    H, W = size
    p = probs.astype(np.float64)
    ys = np.clip((np.arange(H) + 0.5) * h / H - 0.5, 0, h - 1)
    xs = np.clip((np.arange(W) + 0.5) * w / W - 0.5, 0, w - 1)
    out = np.empty((H, W))
    for i, y in enumerate(ys):
        y0 = int(np.floor(y))
        y1, fy = min(y0 + 1, h - 1), y - y0
        row = p[y0] * (1 - fy) + p[y1] * fy
        x0 = np.floor(xs).astype(int)
        x1 = np.minimum(x0 + 1, w - 1)
        fx = xs - x0
        out[i] = row[x0] * (1 - fx) + row[x1] * fx
    return out


def kaggle_kernel_encode(mask: np.ndarray) -> str:
    """The run-length encoder most Carvana kernels used: flatten, pad with zeros, ``np.where``, join."""
    pixels = mask.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)
