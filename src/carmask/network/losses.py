"""Losses and metrics for binary car masks, as small functions that compose.

``y_true`` is the mask (0/1, any numeric dtype) and ``y_pred`` the model's
sigmoid probabilities, both ``(batch, height, width, 1)``; a model with a
linear head (``output_activation: linear``) outputs logits instead and
trains with the ``*_from_logits`` variants (:func:`get_loss`,
:func:`get_metrics`). Every function
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


@keras.saving.register_keras_serializable(package="carmask")
def bce_from_logits(y_true: Tensor, logits: Tensor) -> Tensor:
    """BCE computed from logits: exact and with live gradients for any logit.

    BCE of ``sigmoid(logits)`` would clip the probabilities to [1e-7, 1 - 1e-7]
    and lose the gradient of every saturated pixel.
    """
    return ops.mean(
        keras.losses.binary_crossentropy(ops.cast(y_true, "float32"), ops.cast(logits, "float32"), from_logits=True)
    )


@keras.saving.register_keras_serializable(package="carmask")
def dice_loss_from_logits(y_true: Tensor, logits: Tensor) -> Tensor:
    """1 - soft Dice of ``sigmoid(logits)``."""
    return 1.0 - dice_coef_from_logits(y_true, logits)


@keras.saving.register_keras_serializable(package="carmask")
def bce_dice_from_logits(y_true: Tensor, logits: Tensor) -> Tensor:
    """BCE + Dice loss for a linear head."""
    return bce_from_logits(y_true, logits) + dice_loss_from_logits(y_true, logits)


@keras.saving.register_keras_serializable(package="carmask")
def dice_coef_from_logits(y_true: Tensor, logits: Tensor) -> Tensor:
    """Soft Dice of ``sigmoid(logits)``: the ``dice_coef`` metric of a linear head."""
    return dice_coef(y_true, ops.sigmoid(ops.cast(logits, "float32")))


#: Pixels within this many model pixels of the outline count as its band.
EDGE_RADIUS = 2
#: Extra weight of a band pixel in :func:`edge_bce`: 1 + EDGE_WEIGHT.
EDGE_WEIGHT = 4.0


def edge_weights(y_true: Tensor) -> Tensor:
    """Per pixel (batch, h, w): 1 + EDGE_WEIGHT within EDGE_RADIUS pixels of the outline, 1 elsewhere.

    The band is where a window around the pixel holds both car and
    background; the window is clipped at the image border (average pooling
    leaves padding out), so a car that touches the border has no band there.
    """
    t = ops.cast(y_true, "float32")
    blurred = ops.average_pool(t, pool_size=2 * EDGE_RADIUS + 1, strides=1, padding="same")
    band = ops.cast(ops.logical_and(blurred > 1e-3, blurred < 1.0 - 1e-3), "float32")
    return (1.0 + EDGE_WEIGHT * band)[..., 0]


def _weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    axes = tuple(range(1, len(values.shape)))
    return ops.mean(ops.sum(values * weights, axis=axes) / ops.sum(weights, axis=axes))


@keras.saving.register_keras_serializable(package="carmask")
def edge_bce(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """BCE with the pixels along the outline weighted up (:func:`edge_weights`), per image then batch mean.

    On real photos the errors of a trained model lie in a band a few pixels
    wide along the whole outline; plain BCE spends most of its signal on the
    easy pixels of the car's inside and the studio.
    """
    per_pixel = keras.losses.binary_crossentropy(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"))  # (b, h, w)
    return _weighted_mean(per_pixel, edge_weights(y_true))


@keras.saving.register_keras_serializable(package="carmask")
def edge_bce_dice(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Outline-weighted BCE + Dice loss."""
    return edge_bce(y_true, y_pred) + dice_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="carmask")
def edge_bce_dice_from_logits(y_true: Tensor, logits: Tensor) -> Tensor:
    """Outline-weighted BCE + Dice loss for a linear head (BCE exact from the logits)."""
    per_pixel = keras.losses.binary_crossentropy(ops.cast(y_true, "float32"), ops.cast(logits, "float32"), from_logits=True)
    return _weighted_mean(per_pixel, edge_weights(y_true)) + dice_loss_from_logits(y_true, logits)


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "bce": bce,
    "dice": dice_loss,
    "bce_dice": bce_dice,
    "edge_bce_dice": edge_bce_dice,
}
LOSSES_FROM_LOGITS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "bce": bce_from_logits,
    "dice": dice_loss_from_logits,
    "bce_dice": bce_dice_from_logits,
    "edge_bce_dice": edge_bce_dice_from_logits,
}


def outputs_logits(activation: str | None) -> bool:
    """Whether a head with this ``output_activation`` outputs logits (linear, or none given as null)."""
    return activation in (None, "linear")


def get_loss(name: str, from_logits: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss a config names (``"bce"``, ``"dice"``, ``"bce_dice"`` or ``"edge_bce_dice"``), for probabilities or logits."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")
    return (LOSSES_FROM_LOGITS if from_logits else LOSSES)[name]


def get_metrics(from_logits: bool = False) -> list:
    """Training metrics, named ``dice_coef`` and ``binary_accuracy`` whatever the head.

    For logits, Dice is taken of ``sigmoid(logits)`` and a pixel is car above
    logit 0 (probability 0.5), so the history reads the same for both heads.
    """
    if not from_logits:
        return [dice_coef, "binary_accuracy"]
    return [
        keras.metrics.MeanMetricWrapper(dice_coef_from_logits, name="dice_coef"),
        keras.metrics.BinaryAccuracy(name="binary_accuracy", threshold=0.0),
    ]
