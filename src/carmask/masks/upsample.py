"""Model-size probability maps brought to the photo's full size: bilinear upsampling, alone or averaged.

The submission's masks are the bilinear resize of each model-size map to the
photo's size (half-pixel centres, edges clamped, as Pillow, OpenCV and
``tf.image.resize``), cut at the threshold; never nearest-neighbour, which
turns every model pixel into a visible block along the outline. Models of an
ensemble may predict at different sizes (a 128x192 and a 320x480 model), so
their maps are averaged where they mean the same pixels: at full size. One
model is the one-member mean of weight 1, the same arithmetic.

Interpolating every full-size pixel would make encoding several times
slower. Most of a photo is decided a block at a time instead: rows (and
columns) of the full-size photo that fall in the same model cell for *every*
model form one block, inside which each model's value lies between the
smallest and largest of its cell's four corners; the weighted sums of those
bounds decide every block away from the outline, and only the undecided
blocks are interpolated pixel by pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np


def _frozen(*arrays: np.ndarray) -> None:
    """Make ``arrays`` read-only: they are cached and shared by every later call."""
    for a in arrays:
        a.flags.writeable = False


@lru_cache(maxsize=64)
def axis_map(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear source index and weight of each output pixel along one axis (read-only, cached).

    Half-pixel centres (``align_corners=False``, as Pillow, OpenCV and
    ``tf.image.resize`` use) with edge clamping: output pixel ``o`` samples
    input coordinate ``(o + 0.5) * n_in / n_out - 0.5``. A shard's photos
    share one size and one model size, so each job computes this once.
    """
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    frac = src - low
    _frozen(low, frac)
    return low, frac


#: Decided by bounds only when clear of the cut by this much (0..255 units),
#: so rounding in the bounds can never decide a pixel the exact value would not.
_MARGIN = 1e-6


def _bilinear(
    probs: np.ndarray, ci: np.ndarray, cj: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Bilinear values (float64) of a model-size map at full-size pixels ``rows`` x ``cols``, given their cells.

    ``ci``/``cj`` (the cells' top-left corners) broadcast against ``rows``
    and ``cols``: one per pixel, or one per block of pixels that share a cell.
    The one place the interpolation's arithmetic is written, so every caller
    gets the same float for the same pixel.
    """
    h, w = probs.shape
    wy = axis_map(size[0], h)[1][rows]
    wx = axis_map(size[1], w)[1][cols]
    ci1, cj1 = np.minimum(ci + 1, h - 1), np.minimum(cj + 1, w - 1)
    p = probs.astype(np.float64)
    top = p[ci, cj] * (1 - wx) + p[ci, cj1] * wx
    bottom = p[ci1, cj] * (1 - wx) + p[ci1, cj1] * wx
    return top * (1 - wy) + bottom * wy


def bilinear_at(probs: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear values (float64) of a model-size map (``probs``, or any grid spanning the photo) at full-size pixels.

    ``rows`` and ``cols`` broadcast against each other (half-pixel centres,
    edges clamped, as :func:`axis_map`).
    """
    h, w = probs.shape
    return _bilinear(probs, axis_map(size[0], h)[0][rows], axis_map(size[1], w)[0][cols], rows, cols, size)


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


class Runs(NamedTuple):
    """Along one axis, the runs of full-size rows (or columns) inside one cell of every model."""

    start: np.ndarray  # each run's first index
    length: np.ndarray  # each run's length
    run_of: np.ndarray  # the run of each full-size index
    cells: tuple[np.ndarray, ...]  # per model, the cell index of each run


@lru_cache(maxsize=64)
def _blocks(n_out: int, lengths: tuple[int, ...]) -> Runs:
    """The :class:`Runs` of full-size rows (or columns) inside one cell of every model (read-only, cached).

    A run is at most as
    long as the finest model's cell, so the first cell, which the clamped
    pixels before the first model pixel's centre make longer, comes in two
    runs: the undecided runs are interpolated in blocks padded to the
    longest run, and one long run would double that padding (1280 rows
    from 192: 10 rows against 7). Cached: a job's photos share their sizes.
    """
    cells = np.stack([axis_map(n_out, n)[0] for n in lengths])  # (models, n_out)
    start = np.flatnonzero(np.concatenate(([True], (cells[:, 1:] != cells[:, :-1]).any(axis=0))))
    cap = -(-n_out // max(lengths))
    pieces = -(-np.diff(np.append(start, n_out)) // cap)
    first = np.cumsum(pieces) - pieces
    start = np.repeat(start, pieces) + (np.arange(pieces.sum()) - np.repeat(first, pieces)) * cap
    length = np.diff(np.append(start, n_out))
    run_of = np.repeat(np.arange(start.size), length)
    per_model = tuple(c[start] for c in cells)
    _frozen(start, length, run_of, *per_model)
    return Runs(start, length, run_of, per_model)


def _corner_bounds(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per model cell, the smallest and largest of its four corners (edges replicated as clamped), in ``probs``' dtype."""
    h, w = probs.shape
    grid = np.empty((h + 1, w + 1), dtype=probs.dtype)
    grid[:h, :w] = probs
    grid[h, :w] = probs[-1]
    grid[:, w] = grid[:, w - 1]
    corners = (grid[:-1, :-1], grid[1:, :-1], grid[:-1, 1:], grid[1:, 1:])
    return np.minimum.reduce(corners), np.maximum.reduce(corners)


class Blocks(NamedTuple):
    """A full-size photo cut into blocks, each decided by its corners' bounds or left undecided.

    ``inside`` and ``undecided`` are (row blocks, column blocks) bools; a
    block neither inside nor undecided is below the low cut. ``rows`` and
    ``cols`` are the blocks' :class:`Runs` along each axis.
    """

    inside: np.ndarray
    undecided: np.ndarray
    rows: Runs
    cols: Runs


def decide_blocks(
    maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int], low_cut: float, high_cut: float
) -> Blocks:
    """Blocks whose weighted mean of ``maps`` is surely above ``high_cut``, and those that may lie between the cuts."""
    rows = _blocks(size[0], tuple(m.shape[0] for m in maps))
    cols = _blocks(size[1], tuple(m.shape[1] for m in maps))
    if len(maps) == 1:
        # One model: its blocks split its cells, so decide the cells and copy the decisions
        # (the same float arithmetic as below: 0.0 + w * x is w * x).
        lo, hi = _corner_bounds(maps[0])
        inside = weights[0] * lo.astype(np.float64) > high_cut + _MARGIN
        maybe = ~inside & (weights[0] * hi.astype(np.float64) > low_cut - _MARGIN)
        ci, cj = rows.cells[0], cols.cells[0]
        return Blocks(inside.take(ci, axis=0).take(cj, axis=1), maybe.take(ci, axis=0).take(cj, axis=1), rows, cols)
    low = np.zeros((len(rows.start), len(cols.start)))
    high = np.zeros_like(low)
    for probs, weight, ci, cj in zip(maps, weights, rows.cells, cols.cells):
        lo, hi = _corner_bounds(probs)
        low += weight * lo.take(ci, axis=0).take(cj, axis=1).astype(np.float64)
        high += weight * hi.take(ci, axis=0).take(cj, axis=1).astype(np.float64)
    inside = low > high_cut + _MARGIN
    return Blocks(inside, ~inside & (high > low_cut - _MARGIN), rows, cols)


def block_pixels(
    maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int], blocks: Blocks,
    bi: np.ndarray, bj: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel of the blocks (``bi``, ``bj``), padded to the longest block: rows, cols, valid, weighted mean.

    Returns ``rows`` (K, by) and ``cols`` (K, bx), clamped to the photo,
    ``valid`` (K, by, bx), false on the padding, and the exact weighted
    bilinear values (float64, K x by x bx).
    """
    H, W = size
    row_start, row_len, row_cells = blocks.rows.start, blocks.rows.length, blocks.rows.cells
    col_start, col_len, col_cells = blocks.cols.start, blocks.cols.length, blocks.cols.cells
    by, bx = int(row_len.max()), int(col_len.max())
    rows = np.minimum(row_start[bi][:, None] + np.arange(by), H - 1)  # (K, by)
    cols = np.minimum(col_start[bj][:, None] + np.arange(bx), W - 1)  # (K, bx)
    valid = (np.arange(by) < row_len[bi][:, None])[:, :, None] & (np.arange(bx) < col_len[bj][:, None])[:, None, :]
    value = np.zeros(valid.shape)
    for probs, weight, ci, cj in zip(maps, weights, row_cells, col_cells):
        # A block lies in one cell of each model: its four corners are
        # gathered once per block, the weights per pixel.
        cells = ci[bi][:, None, None], cj[bj][:, None, None]
        value = value + weight * _bilinear(probs, *cells, rows[:, :, None], cols[:, None, :], size)
    return rows, cols, valid, value


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
    the outline that :mod:`carmask.masks.refine` re-decides.
    """
    blocks = decide_blocks(maps, weights, size, low_cut, high_cut)
    # Blocks to pixels: columns by index (one gather), then whole rows repeated.
    above = blocks.inside.view(np.uint8).take(blocks.cols.run_of, axis=1).repeat(blocks.rows.length, axis=0).view(bool)
    bi, bj = np.nonzero(blocks.undecided)
    if not bi.size:
        return above, np.zeros(0, dtype=np.int64), np.zeros(0)
    rows, cols, valid, value = block_pixels(maps, weights, size, blocks, bi, bj)
    return above, (rows[:, :, None] * size[1] + cols[:, None, :])[valid], value[valid]


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


def full_probabilities(maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int]) -> np.ndarray:
    """The weighted mean of ``maps`` at full ``size`` as float32 probabilities in [0, 1], fast.

    The same bilinear interpolation as :func:`mean_probabilities` (to float32
    rounding), done separably, rows then columns: ~10x faster, for the
    learned refinement's input, which needs every pixel near the outline.
    """
    total = np.zeros(size, dtype=np.float32)
    for probs, weight in zip(maps, weights):
        p = probs.astype(np.float32) * np.float32(weight / 255.0)
        h, w = p.shape
        low, frac = axis_map(size[0], h)
        frac = frac.astype(np.float32)[:, None]
        rows = p[low] * (1 - frac) + p[np.minimum(low + 1, h - 1)] * frac
        low, frac = axis_map(size[1], w)
        frac = frac.astype(np.float32)
        total += rows[:, low] * (1 - frac) + rows[:, np.minimum(low + 1, w - 1)] * frac
    return total
