"""The Dice-optimal mask threshold on the validation photos (``inference.threshold: auto``).

``inference.threshold: auto`` scores every threshold of :data:`GRID` on the
validation predictions at full size (the mean per-image Dice, Kaggle's
metric) and keeps the best; the encode stage then cuts the validation and
test masks there. One pass per photo: its full-size probabilities are
counted into the grid's bins, inside and outside the true mask, and the
counts give every threshold's Dice at once, exactly as thresholding and
scoring each would.

Choosing on the validation cars and reporting Dice on the same cars flatters
the tuned number a little; the curve in the file shows how flat it is.
Reading the chosen number back is :func:`carmask.stages.threshold.resolve`, kept
apart so that editing the tuning reruns the tuning, not every encode job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from carmask import files
from carmask.masks.upsample import mean_probabilities
from carmask.masks.images import load_mask
from carmask.logs import Progress
from carmask.masks.probability_maps import read_members

log = logging.getLogger(__name__)

#: Thresholds tried by ``auto``: 0.10 to 0.90 in steps of 0.02.
GRID: tuple[float, ...] = tuple(round(0.10 + 0.02 * i, 2) for i in range(41))


def dice_counts(values: np.ndarray, truth: np.ndarray, grid: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """For each threshold: pixels predicted car, and of those truly car; and the true car pixels.

    ``values`` are full-size probabilities on the 0..255 scale (as
    :func:`carmask.masks.upsample.mean_probabilities`), predicted car where above
    ``255 * t``, the comparison the encode stage makes.
    """
    cuts = np.array([255.0 * float(t) for t in grid])
    if np.any(np.diff(cuts) <= 0):
        raise ValueError(f"threshold grid must rise strictly, got {list(grid)}")
    # bins[i]: how many cuts lie below the value, so value > cuts[j] exactly when bin > j.
    bins = np.searchsorted(cuts, values.ravel(), side="left")
    n = len(cuts) + 1
    all_counts = np.bincount(bins, minlength=n)
    car_counts = np.bincount(bins[truth.ravel().astype(bool)], minlength=n)
    above = np.cumsum(all_counts[::-1])[::-1][1:]  # above[j]: bins > j
    car_above = np.cumsum(car_counts[::-1])[::-1][1:]
    return above, car_above, int(np.count_nonzero(truth))


def dice_curve(above: np.ndarray, car_above: np.ndarray, truth_pixels: int) -> np.ndarray:
    """Per-threshold Dice of one photo from :func:`dice_counts` (1 when both masks are empty)."""
    total = above + truth_pixels
    return np.where(total == 0, 1.0, 2.0 * car_above / np.maximum(total, 1))


def choose(grid: Sequence[float], mean_dice: Sequence[float]) -> float:
    """The threshold with the highest mean Dice; among equals, the one nearest 0.5."""
    best = max(mean_dice)
    return min((t for t, d in zip(grid, mean_dice) if d == best), key=lambda t: (round(abs(t - 0.5), 9), t))


def tune_threshold(pred_paths: Sequence[str], weights: Sequence[float], val_path: str, out_json: str,
                   grid: Sequence[float] = GRID) -> float:
    """Pick the Dice-optimal threshold for one model (or ensemble) on its validation predictions.

    Writes ``out_json``: the threshold, its Dice, the Dice at 0.5 and the
    whole curve.
    """
    val = pd.read_parquet(val_path, columns=["img", "height", "width", "mask_path"])
    rows = {img: (int(h), int(w), m) for img, h, w, m in zip(val["img"], val["height"], val["width"], val["mask_path"])}
    progress = Progress(len(val), "scored at every threshold", log)
    curves = []
    for img, maps in read_members(pred_paths):
        if img not in rows:
            raise ValueError(f"{pred_paths[0]}: prediction for {img}, which is not a validation photo of {val_path}")
        h, w, mask_path = rows.pop(img)
        values = mean_probabilities(maps, weights, (h, w))
        curves.append(dice_curve(*dice_counts(values, load_mask(mask_path), grid)))
        progress.update()
    if rows:
        raise ValueError(f"{pred_paths}: no prediction for {len(rows)} validation photos, e.g. {next(iter(rows))}")
    mean = np.mean(curves, axis=0) if curves else np.ones(len(grid))
    threshold = choose(grid, mean.tolist())
    at = dict(zip(grid, mean.tolist()))
    files.write_json(
        {
            "threshold": threshold,
            "dice": at[threshold],
            "dice_at_0.5": at.get(0.5),
            "n_images": len(curves),
            "curve": {f"{t:.2f}": round(d, 6) for t, d in at.items()},
        },
        out_json,
    )
    log.info("threshold %.2f: Dice %.5f (at 0.5: %s)", threshold, at[threshold], at.get(0.5))
    return threshold
