"""The Kaggle metric (mean per-image Dice) and the resolution ceiling.

Dice is computed on full-size boolean masks: ``2|A∩B| / (|A| + |B|)``, and
1 when both masks are empty (Kaggle's rule).
"""

from __future__ import annotations

import numpy as np

from carmask.masks import images
from carmask.masks.upsample import mean_mask


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two boolean masks of the same shape."""
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    pred = pred.astype(bool, copy=False)
    truth = truth.astype(bool, copy=False)
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(truth))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & truth)) / total


def ceiling_dice(truth: np.ndarray, size: tuple[int, int], threshold: float) -> float:
    """Best Dice a model of input ``size`` can reach on ``truth``.

    The true mask is shrunk to the model size exactly as training targets are,
    quantised as predictions are, and brought back with the same bilinear
    upsampling and threshold as the submission: whatever is lost here, no
    model at that size can recover.
    """
    small = images.downscale_mask(truth, size)
    return dice(mean_mask([small], [1.0], truth.shape, threshold), truth)
