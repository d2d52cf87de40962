"""Losses and metrics for binary car masks, as small functions that compose.

``y_true`` is the mask (0/1, any numeric dtype) and ``y_pred`` the model's
sigmoid probabilities, both ``(batch, height, width, 1)``. Every function
returns one scalar, the mean over the batch, so they work as Keras losses
and as Keras metrics alike.

All are registered under the ``carmask`` package name: a model compiled with
them and saved to ``.keras`` loads again once this module is imported (no
``custom_objects`` needed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

#: Whatever Keras passes a loss: a backend tensor, or a NumPy array in tests.
Tensor = Any


def _per_image_sums(y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: the overlap sum(t * p) and the total sum(t) + sum(p), in float32.

    float32 even under mixed precision, because a full-size mask sums millions
    of pixels.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_pred.shape)))
    return ops.sum(y_true * y_pred, axis=axes), ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)


@keras.saving.register_keras_serializable(package="carmask")
def dice_coef(y_true: Tensor, y_pred: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft Dice, 2|T.P| / (|T| + |P|), per image and then averaged over the batch.

    Per image so that a small car counts as much as a large one, as in
    Kaggle's score. ``smooth`` keeps an empty mask predicted empty at 1 and
    the gradient finite.
    """
    overlap, total = _per_image_sums(y_true, y_pred)
    return ops.mean((2.0 * overlap + smooth) / (total + smooth))


@keras.saving.register_keras_serializable(package="carmask")
def hard_dice_coef(y_true: Tensor, y_pred: Tensor, threshold: float = 0.5) -> Tensor:
    """Dice of the masks thresholded at ``threshold`` (pixel is car if p > threshold), batch mean.

    For reporting: it is what the Kaggle score measures on the binary mask,
    with no smoothing, and 1 when both masks are empty (Kaggle's rule).
    """
    overlap, total = _per_image_sums(
        ops.cast(ops.greater(ops.cast(y_true, "float32"), 0.5), "float32"),
        ops.cast(ops.greater(ops.cast(y_pred, "float32"), threshold), "float32"),
    )
    return ops.mean(ops.where(total > 0, 2.0 * overlap / ops.maximum(total, 1.0), 1.0))


@keras.saving.register_keras_serializable(package="carmask")
def dice_loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """1 - soft Dice: optimises the overlap directly, whatever the car/background balance."""
    return 1.0 - dice_coef(y_true, y_pred)


@keras.saving.register_keras_serializable(package="carmask")
def bce(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Binary cross-entropy over all pixels, batch mean: a per-pixel signal with smooth gradients."""
    return ops.mean(keras.losses.binary_crossentropy(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")))


@keras.saving.register_keras_serializable(package="carmask")
def bce_dice(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """BCE + Dice loss: per-pixel gradients early on, the overlap score at the end."""
    return bce(y_true, y_pred) + dice_loss(y_true, y_pred)


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "bce": bce,
    "dice": dice_loss,
    "bce_dice": bce_dice,
}


def get_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss a config names: ``"bce"``, ``"dice"`` or ``"bce_dice"``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")
    return LOSSES[name]
