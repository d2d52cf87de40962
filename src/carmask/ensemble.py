"""Weighted means of several models' probabilities, at each photo's full size.

Models of an ensemble may predict at different sizes (a 128x192 and a
320x480 model), so their maps can only be averaged where they mean the same
pixels: at the photo's full size, after each is brought there with the
bilinear upsampling every single model's submission uses
(:func:`carmask.images.probs_to_mask`). A one-model "ensemble" of weight 1 is
exactly that model's mask.

Interpolating every full-size pixel of every model would make encoding
several times slower. As in ``probs_to_mask``, most of a photo is decided a
block at a time: rows (and columns) of the full-size photo that fall in the
same model cell for *every* model form one block, inside which each model's
value lies between the smallest and largest of its cell's four corners; the
weighted sums of those bounds decide every block away from the outline, and
only the undecided blocks are interpolated pixel by pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from carmask.images import axis_map

#: Decided by bounds only when clear of the cut by this much (0..255 units),
#: so rounding in the bounds can never decide a pixel the exact value would not.
_MARGIN = 1e-6


def bilinear_at(probs: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear values (float64) of a model-size map (``probs``, or any grid spanning the photo) at full-size pixels.

    ``rows`` and ``cols`` broadcast against each other. The arithmetic is
    :func:`carmask.images.probs_to_mask`'s, operation for operation, so the
    same pixel gets the same float.
    """
    h, w = probs.shape
    y0, wy = axis_map(size[0], h)
    x0, wx = axis_map(size[1], w)
    ci, cj = y0[rows], x0[cols]
    ci1, cj1 = np.minimum(ci + 1, h - 1), np.minimum(cj + 1, w - 1)
    fy, fx = wy[rows], wx[cols]
    p = probs.astype(np.float64)
    top = p[ci, cj] * (1 - fx) + p[ci, cj1] * fx
    bottom = p[ci1, cj] * (1 - fx) + p[ci1, cj1] * fx
    return top * (1 - fy) + bottom * fy


def mean_probabilities(maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int]) -> np.ndarray:
    """The weighted mean of ``maps`` at full ``size`` (H, W), every pixel interpolated (0..255, float64).

    For threshold tuning on the validation photos; the encode stage uses
    :func:`mean_mask`, which decides the same pixels without this cost.
    """
    rows, cols = np.arange(size[0])[:, None], np.arange(size[1])[None, :]
    total = np.zeros(size, dtype=np.float64)
    for probs, weight in zip(maps, weights):
        total = total + weight * bilinear_at(probs, rows, cols, size)
    return total


def _blocks(n_out: int, lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Runs of full-size rows (or columns) inside one cell of every model.

    Returns each run's first index, its length, and per model the cell
    index of each run.
    """
    cells = np.stack([axis_map(n_out, n)[0] for n in lengths])  # (models, n_out)
    start = np.flatnonzero(np.concatenate(([True], (cells[:, 1:] != cells[:, :-1]).any(axis=0))))
    length = np.diff(np.append(start, n_out))
    return start, length, [c[start] for c in cells]


def _corner_bounds(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per model cell, the smallest and largest of its four corners (edges replicated as clamped)."""
    h, w = probs.shape
    grid = np.empty((h + 1, w + 1), dtype=np.float64)
    grid[:h, :w] = probs
    grid[h, :w] = probs[-1]
    grid[:, w] = grid[:, w - 1]
    corners = np.stack([grid[:-1, :-1], grid[1:, :-1], grid[:-1, 1:], grid[1:, 1:]])
    return corners.min(axis=0), corners.max(axis=0)


def pixels_between(
    maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int], low_cut: float, high_cut: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full-size pixels whose weighted mean of ``maps`` may lie between two cuts (0..255 units).

    Returns ``(above, flat, value)``: a bool (H, W) mask of the pixels
    decided by their block's bounds to be above ``high_cut``, and the flat
    indices and exact weighted bilinear values (float64) of every pixel of
    the blocks the bounds could not place below ``low_cut`` or above
    ``high_cut``. Pixels of neither are below ``low_cut``. With one cut this
    is a threshold (:func:`mean_mask`); with two, the uncertain band along
    the outline that :mod:`carmask.refine` re-decides.
    """
    H, W = size
    row_start, row_len, row_cells = _blocks(H, [m.shape[0] for m in maps])
    col_start, col_len, col_cells = _blocks(W, [m.shape[1] for m in maps])
    low = np.zeros((len(row_start), len(col_start)))
    high = np.zeros_like(low)
    for probs, weight, ci, cj in zip(maps, weights, row_cells, col_cells):
        lo, hi = _corner_bounds(probs)
        low += weight * lo[np.ix_(ci, cj)]
        high += weight * hi[np.ix_(ci, cj)]
    inside = low > high_cut + _MARGIN
    undecided = ~inside & (high > low_cut - _MARGIN)
    above = np.repeat(np.repeat(inside, col_len, axis=1), row_len, axis=0)

    bi, bj = np.nonzero(undecided)
    if not bi.size:
        return above, np.zeros(0, dtype=np.int64), np.zeros(0)
    by, bx = int(row_len.max()), int(col_len.max())
    rows = row_start[bi][:, None] + np.arange(by)  # (K, by)
    cols = col_start[bj][:, None] + np.arange(bx)  # (K, bx)
    valid = (np.arange(by) < row_len[bi][:, None])[:, :, None] & (np.arange(bx) < col_len[bj][:, None])[:, None, :]
    rows = np.minimum(rows, H - 1)[:, :, None]
    cols = np.minimum(cols, W - 1)[:, None, :]
    value = np.zeros(valid.shape)
    for probs, weight in zip(maps, weights):
        value = value + weight * bilinear_at(probs, rows, cols, size)
    return above, (rows * W + cols)[valid], value[valid]


def mean_mask(maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int], threshold: float) -> np.ndarray:
    """Full-size bool mask where the weighted mean of ``maps`` (uint8 probabilities) is above ``threshold``.

    Equal to ``mean_probabilities(maps, weights, size) > 255 * threshold``
    pixel for pixel; see the module's docstring for how it avoids computing
    that.
    """
    cut = 255.0 * threshold
    mask, flat, value = pixels_between(maps, weights, size, cut, cut)
    mask.reshape(-1)[flat] = value > cut
    return mask
