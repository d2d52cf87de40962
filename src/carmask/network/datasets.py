"""The tf.data input pipeline of training (inference reads with :func:`carmask.masks.images.photo_batches`).

Photos are decoded in parallel by Pillow (with JPEG draft scaling) inside
``tf.numpy_function``; decoded training examples are cached as ``uint8`` at
model size (4x smaller than float32), so later epochs read memory, not JPEGs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from carmask.masks import images
from carmask.network.spec import ModelSpec

AUTOTUNE = tf.data.AUTOTUNE


def training_dataset(frame: pd.DataFrame, spec: ModelSpec, training: bool) -> tf.data.Dataset:
    """(image, mask) float32 batches for ``model.fit``.

    Targets are the masks shrunk with antialiasing (soft edges). With
    ``training``, examples are shuffled and flipped as configured; the seed
    comes from the model's spec so a rerun sees the same batches.
    """
    size, channels = spec.architecture.size, spec.architecture.channels
    seed = spec.training.seed
    aug = spec.augmentation

    def load(image_path: bytes, mask_path: bytes) -> tuple[np.ndarray, np.ndarray]:
        img = images.load_image(image_path.decode(), size, channels)
        mask = images.downscale_mask(images.load_mask(mask_path.decode()), size)
        return img, mask[..., None]

    def tf_load(image_path: tf.Tensor, mask_path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        img, mask = tf.numpy_function(load, [image_path, mask_path], (tf.uint8, tf.uint8), stateful=False)
        img.set_shape((*size, channels))
        mask.set_shape((*size, 1))
        return img, mask

    def to_float(img: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(img, tf.float32) / 255.0, tf.cast(mask, tf.float32) / 255.0

    jitter, zoom, stretch, shift = aug.color_jitter, aug.zoom, aug.stretch, aug.shift

    def augment(key: tf.Tensor, example: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        # Stateless ops keyed per example: the same seed gives the same
        # augmentations however tf.data schedules its parallel calls.
        img, mask = example
        seeds = tf.random.experimental.stateless_split(tf.stack([key, tf.constant(seed, tf.int64)]), 7)
        both = tf.concat([img, mask], axis=-1)
        if aug.flip_lr:
            both = tf.image.stateless_random_flip_left_right(both, seeds[0])
        if aug.flip_ud:
            both = tf.image.stateless_random_flip_up_down(both, seeds[1])
        if zoom > 0 or stretch > 0 or shift > 0:
            both = _random_affine(both, seeds[6], zoom, stretch, shift)
        img, mask = both[..., :channels], both[..., channels:]
        if jitter > 0:
            # Few cars means few paint colours: shift colour and light so an
            # unseen colour is not an unseen car.
            img = tf.image.stateless_random_brightness(img, 0.2 * jitter, seeds[2])
            img = tf.image.stateless_random_contrast(img, 1 - 0.3 * jitter, 1 + 0.3 * jitter, seeds[3])
            if channels == 3:
                img = tf.image.stateless_random_saturation(img, 1 - 0.5 * jitter, 1 + 0.5 * jitter, seeds[4])
                img = tf.image.stateless_random_hue(img, 0.5 * jitter, seeds[5])
            img = tf.clip_by_value(img, 0.0, 1.0)
        return img, mask

    ds = tf.data.Dataset.from_tensor_slices((frame["image_path"].tolist(), frame["mask_path"].tolist()))
    ds = ds.map(tf_load, num_parallel_calls=AUTOTUNE, deterministic=True).cache()
    if training:
        ds = ds.shuffle(len(frame), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_float, num_parallel_calls=AUTOTUNE)
    if training:
        keys = tf.data.Dataset.random(seed=seed)  # restarts each epoch, meets other examples after the reshuffle
        ds = tf.data.Dataset.zip(keys, ds).map(augment, num_parallel_calls=AUTOTUNE)
    return ds.batch(spec.training.batch_size).prefetch(AUTOTUNE)


def _random_affine(image: tf.Tensor, seed: tf.Tensor, zoom: float, stretch: float, shift: float) -> tf.Tensor:
    """Scale, stretch and move one (h, w, c) image (photo and mask channels together).

    Thirteen cars teach a network thirteen silhouettes: it learns "a car is
    this tall" and paints a roof over a low convertible. Zooming by up to
    ``1 +- zoom``, stretching height against width by up to ``1 +- stretch``
    and shifting by up to ``shift`` of the size shows it cars of other
    proportions and places. Edges are extended (``NEAREST``), which in a
    studio photo is more floor or wall; the mask channel moves with the photo,
    bilinearly, so its edges stay soft like the downscaled targets.
    """
    h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    u = tf.random.stateless_uniform((4,), seed, -1.0, 1.0)
    scale = 1.0 + zoom * u[0]
    aspect = tf.exp(tf.math.log1p(stretch) * u[1])  # symmetric in log: 1.15 and 1/1.15 equally likely
    sy, sx = scale * tf.sqrt(aspect), scale / tf.sqrt(aspect)
    ty, tx = shift * h * u[2], shift * w * u[3]
    cy, cx = (h - 1.0) / 2.0, (w - 1.0) / 2.0
    # Output pixel (x, y) samples input ((x - cx - tx) / sx + cx, (y - cy - ty) / sy + cy).
    transform = tf.stack(
        [1.0 / sx, 0.0, cx - (cx + tx) / sx, 0.0, 1.0 / sy, cy - (cy + ty) / sy, 0.0, 0.0]
    )[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    return out[0]
