"""The Kaggle RLE of a thresholded bilinear mask, found from its blocks without drawing the mask.

:func:`carmask.masks.upsample.mean_mask` decides most of a full-size photo a
block at a time and interpolates only the blocks along the outline; the
encode stage then scanned all 2.46 M pixels of the mask it drew to find
where the runs start and end. Those places are known from the blocks
already: two neighbouring pixels (in Kaggle's row-major order) can differ
only

- at the boundary of two decided blocks of different values, at the same
  column in every row of their block row;
- inside an undecided block, or where one meets its neighbour;
- from the end of one row to the start of the next.

So :func:`mean_mask_rle` compares only those pairs, and its RLE equals
``rle.encode(mean_mask(...))`` for every input (tested): the blocks'
decisions and the outline's interpolated values are the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from carmask.masks.rle import from_changes
from carmask.masks.upsample import Blocks, block_pixels, decide_blocks


def _row_ends(blocks: Blocks, pix: np.ndarray, index: np.ndarray, column: int, at: int) -> np.ndarray:
    """Per full-size row, the mask's value at pixel ``at`` of block column ``column`` (its first or last pixel)."""
    row_start, row_len = blocks.rows.start, blocks.rows.length
    value = np.repeat(blocks.inside[:, column], row_len)
    k = index[:, column]
    (block_rows,) = np.nonzero(k >= 0)
    if block_rows.size:
        by = pix.shape[1]
        rows = row_start[block_rows][:, None] + np.arange(by)
        valid = np.arange(by) < row_len[block_rows][:, None]
        value[rows[valid]] = pix[k[block_rows], :, at][valid]
    return value


def _changes_at_decided_edges(blocks: Blocks, width: int) -> np.ndarray:
    """Flat indices where two decided blocks of different values meet side by side, in every row they share."""
    inside, undecided = blocks.inside, blocks.undecided
    row_start, row_len = blocks.rows.start, blocks.rows.length
    edge = (inside[:, 1:] != inside[:, :-1]) & ~undecided[:, 1:] & ~undecided[:, :-1]
    bi, bj = np.divmod(np.flatnonzero(edge), edge.shape[1])
    counts = row_len[bi]
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = np.repeat(row_start[bi], counts) + offset
    return rows * width + np.repeat(blocks.cols.start[bj + 1], counts)


def _changes_in_undecided(blocks: Blocks, pix: np.ndarray, index: np.ndarray, bi: np.ndarray, bj: np.ndarray,
                          width: int) -> np.ndarray:
    """Flat indices of changes between pixels of which at least one is in an undecided block.

    Each pair of side-by-side pixels belongs to one block: an undecided block
    takes the pairs whose right pixel is its own (its left edge and inside),
    and the pair across its right edge when the block to its right is
    decided (an undecided one takes that pair as its left edge).
    """
    inside, undecided = blocks.inside, blocks.undecided
    row_start, row_len = blocks.rows.start, blocks.rows.length
    col_start, col_len = blocks.cols.start, blocks.cols.length
    n_cols = inside.shape[1]
    k, by, bx = pix.shape
    # Each block's rows with its left neighbour's last pixel before and the right one's first after.
    ext = np.zeros((k, by, bx + 2), dtype=bool)
    ext[:, :, 1 : bx + 1] = pix
    left = bj - 1
    has_left = left >= 0
    left_k = np.where(has_left, index[bi, left], -1)
    ext[:, :, 0] = inside[bi, left][:, None]  # left == -1 wraps around, but that pair is never taken
    from_pixels = left_k >= 0
    ext[from_pixels, :, 0] = pix[left_k[from_pixels], :, col_len[left[from_pixels]] - 1]
    right = np.minimum(bj + 1, n_cols - 1)
    right_owned = (bj + 1 < n_cols) & ~undecided[bi, right]
    (owners,) = np.nonzero(right_owned)
    ext[owners, :, 1 + col_len[bj[owners]]] = inside[bi[owners], right[owners]][:, None]
    # Pair t is the pixel at column col_start + t against the one before it.
    t = np.arange(bx + 1)
    first = np.where(has_left, 0, 1)  # column 0 against the row before: the rows' ends
    last = col_len[bj] - 1 + right_owned
    taken = (t >= first[:, None]) & (t <= last[:, None])
    rows_valid = np.arange(by) < row_len[bi][:, None]
    changed = (ext[:, :, 1:] != ext[:, :, :-1]) & rows_valid[:, :, None] & taken[:, None, :]
    kk, rest = np.divmod(np.flatnonzero(changed), by * (bx + 1))
    rr, tt = np.divmod(rest, bx + 1)
    return (row_start[bi[kk]] + rr) * width + col_start[bj[kk]] + tt


def mean_mask_rle(maps: Sequence[np.ndarray], weights: Sequence[float], size: tuple[int, int], threshold: float) -> str:
    """The Kaggle RLE of :func:`carmask.masks.upsample.mean_mask` ``(maps, weights, size, threshold)``.

    Equal to ``rle.encode(mean_mask(maps, weights, size, threshold))``
    without the full-size mask: see the module's docstring.
    """
    height, width = size
    cut = 255.0 * threshold
    blocks = decide_blocks(maps, weights, size, cut, cut)
    bi, bj = np.divmod(np.flatnonzero(blocks.undecided), blocks.undecided.shape[1])
    index = np.full(blocks.inside.shape, -1, dtype=np.int64)
    index[bi, bj] = np.arange(bi.size)
    if bi.size:
        _, _, valid, value = block_pixels(maps, weights, size, blocks, bi, bj)
        pix = (value > cut) & valid
    else:
        pix = np.zeros((0, 1, 1), dtype=bool)
    first = _row_ends(blocks, pix, index, 0, 0)
    last_col = blocks.inside.shape[1] - 1
    last = _row_ends(blocks, pix, index, last_col, int(blocks.cols.length[last_col]) - 1)
    (wraps,) = np.nonzero(first[1:] != last[:-1])
    change = np.concatenate((
        _changes_at_decided_edges(blocks, width),
        _changes_in_undecided(blocks, pix, index, bi, bj, width) if bi.size else np.zeros(0, dtype=np.int64),
        (wraps + 1) * width,
    ))
    change.sort()
    return from_changes(change, bool(first[0]), bool(last[-1]), height * width)
