"""Edge refinement: re-decide the uncertain band along the outline with the full-size photo.

A network at 160x240 places the car's outline to within a pixel of its own
size, which is eight pixels of the 1918x1280 photo: bilinear upsampling
smooths that step, but the edge is still a little off all along the outline
(a roof edge missed by a few pixels, a strip of floor shadow called car).
Those are the pixels whose upsampled probability is neither near 0 nor near
1. A guided filter (He, Sun and Tang, 2013) re-decides exactly them: within
a small window it fits the probability as a linear function of the photo's
brightness, so the probability edge snaps to the brightness edge nearby,
where the car really ends. Everywhere else the mask stays the bilinear one.

The filter's coefficients are computed at a quarter of the full size (the
"fast guided filter") and evaluated at full size only in the band, so the
cost is one full-size grayscale JPEG decode plus the filter in the band;
what it is worth and costs on real photos: docs/real-photos.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from carmask.masks.upsample import bilinear_at, mean_probabilities, pixels_between

#: Window radius of the filter, in full-size pixels: about one model pixel.
RADIUS = 8
#: Regularisation: how strong a brightness edge must be to move the outline
#: (brightness in [0, 1]; larger is smoother, 1e-2 already loses most of the gain).
EPS = 1e-3
#: The coefficients are computed at 1/SUBSAMPLE of the full size.
SUBSAMPLE = 4
#: The band re-decided: upsampled probabilities strictly between these.
BAND = (0.02, 0.98)
#: Ways of refining a mask: ``none`` keeps the bilinear one; ``learned`` is
#: :mod:`carmask.network.refiner`, which re-decides the same band.
METHODS = ("none", "guided", "learned")
#: A learned refinement, as the stages call it: (model-size ``uint8`` maps,
#: their weights, the full-size RGB photo, threshold) -> full-size bool mask.
BandRefiner = Callable[[Sequence[np.ndarray], Sequence[float], np.ndarray, float], np.ndarray]


def _checked(path: str | Path, photo: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``photo`` itself; an error naming ``path`` when it is not ``size`` (H, W), as the manifest recorded it."""
    if size is not None and photo.shape[:2] != tuple(size):
        raise ValueError(f"{path} is {photo.shape[1]}x{photo.shape[0]}, the manifest says {size[1]}x{size[0]}: "
                         "the photo changed since the manifest was made")
    return photo


def load_gray(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """The photo's brightness at full size, float32 in [0, 1]; checked against ``size`` (H, W) when given.

    JPEGs decode their luminance channel only (``draft("L")``), skipping
    the colour planes: the guide needs no colour.
    """
    with Image.open(path) as img:
        img.draft("L", img.size)
        return _checked(path, np.asarray(img.convert("L"), dtype=np.float32) / 255.0, size)


def load_rgb(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The photo at full size, ``uint8`` (H, W, 3); an error naming it when it is not ``size`` (H, W)."""
    with Image.open(path) as img:
        return _checked(path, np.asarray(img.convert("RGB")), size)


def _window_sums(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Sums over the window of radius ``r`` along one axis (clipped at the ends), and the window sizes."""
    n = x.shape[axis]
    c = np.concatenate([np.zeros_like(np.take(x, [0], axis=axis)), np.cumsum(x, axis=axis)], axis=axis)
    lo, hi = np.clip(np.arange(n) - r, 0, n), np.clip(np.arange(n) + r + 1, 0, n)
    return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis), hi - lo


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel, the window clipped at the borders (separable)."""
    rows, n_rows = _window_sums(np.asarray(x, dtype=np.float64), r, axis=0)
    both, n_cols = _window_sums(rows, r, axis=1)
    return both / (n_rows[:, None] * n_cols[None, :])


def guided_coefficients(guide: np.ndarray, probs: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The window-averaged linear coefficients (a, b) with ``probs ~ a * guide + b`` locally.

    He et al.'s guided filter: per window the least-squares fit of ``probs``
    on ``guide`` with ridge ``eps``; each pixel averages the fits of the
    windows that hold it. The filtered value is ``a * guide + b``.
    """
    mean_i, mean_p = _box(guide, radius), _box(probs, radius)
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    cov_ip = _box(guide * probs, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def refined_mask(
    maps: Sequence[np.ndarray], weights: Sequence[float], gray: np.ndarray, threshold: float,
    radius: int = RADIUS, eps: float = EPS, subsample: int = SUBSAMPLE,
) -> np.ndarray:
    """The full-size mask of the weighted mean of ``maps``, its uncertain band re-decided by the photo.

    ``maps`` are ``uint8`` model-size probabilities (one model, or an
    ensemble's with their ``weights``), ``gray`` the photo's brightness at
    full size (:func:`load_gray`). Outside the band the mask is exactly the
    bilinear one (:func:`carmask.masks.upsample.mean_mask`); inside, a pixel is car
    where the guided filter's value is above ``threshold``.
    """
    size = gray.shape
    # One pass finds the band and decides the mask outside it: every pixel
    # not placed above the band's top nor interpolated lies below its bottom.
    low, high = 255.0 * min(BAND[0], threshold), 255.0 * max(BAND[1], threshold)
    mask, flat, value = pixels_between(maps, weights, size, low, high)
    mask.reshape(-1)[flat] = value > 255.0 * threshold
    flat = flat[(value > 255.0 * BAND[0]) & (value < 255.0 * BAND[1])]
    if not flat.size:
        return mask
    coarse = (-(-size[0] // subsample), -(-size[1] // subsample))
    guide = np.asarray(Image.fromarray(gray).resize(coarse[::-1], Image.BOX), dtype=np.float64)
    probs = mean_probabilities(maps, weights, coarse) / 255.0
    a, b = guided_coefficients(guide, probs, max(1, round(radius / subsample)), eps)
    rows, cols = np.divmod(flat, size[1])
    filtered = bilinear_at(a, rows, cols, size) * gray.reshape(-1)[flat] + bilinear_at(b, rows, cols, size)
    mask.reshape(-1)[flat] = filtered > threshold
    return mask
