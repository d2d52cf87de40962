"""Learned edge refinement: a small full-resolution network re-decides the uncertain band along the outline.

The segmentation network sees the photo at 192x288, a pixel of which is
6.7 pixels of the 1918x1280 photo, so its outline is a little off all the
way round: on the validation cars nearly every wrong pixel lies where the
upsampled probability is between 0.02 and 0.98 (deciding just those pixels
right would score 0.9996). This stage re-decides exactly them, at full size,
from the photo's own colour and the upsampled probability: a stack of five
3x3 convolutions with growing dilation (each pixel sees 16 full-size pixels
around it), whose output is added to the probability's logit, so an
untrained stage is the bilinear mask. It has about ten thousand weights and
trains in minutes on crops centred on the band of the training photos'
predictions (made with the same test-time views as the photos it will
refine). Everywhere else the mask stays the bilinear one.

At prediction time it runs on the 64-pixel tiles of the photo that hold band
pixels, each read with a margin as wide as the network sees: the values are
those of one pass over the whole photo (but for its outermost pixels), for a
fraction of its cost. What it
is worth and costs: docs/real-photos.md and docs/performance.md.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carmask import files
from carmask.logs import Progress
from carmask.masks.images import load_mask
from carmask.masks.probability_maps import read_members
from carmask.masks.refine import BAND, load_rgb
from carmask.masks.upsample import full_probabilities, pixels_between
from carmask.network import runtime
from carmask.planning.settings import PRECISIONS

log = logging.getLogger(__name__)

#: Photos are refined in square tiles of this many full-size pixels.
TILE = 64
#: Tiles per network call.
TILES_PER_CALL = 64
#: The network's logit is clipped probability's logit plus its output.
_CLIP = 1e-4
#: About this many crops, evenly spread over the training photos, measure the band loss before and after training.
LOSS_SAMPLE = 2048


@dataclass(frozen=True)
class RefinerSpec:
    """The ``refiner`` block of the config: the network's widths and how it trains.

    ``crop`` is the side of a training crop, ``crops_per_photo`` how many are
    centred on random band pixels of each training photo; the loss counts
    the band's pixels at least ``crop // 8`` from a crop's border.
    ``train_precision`` is the Keras dtype policy the convolutions compute
    in, when training and when refining (the saved network keeps it).
    """

    filters: int = 16
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    crop: int = 64
    crops_per_photo: int = 32
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 0.002
    seed: int = 0
    train_precision: str = "float32"

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> RefinerSpec:
        """The spec from the config's ``refiner`` block (missing keys keep their defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"refiner has unknown settings {unknown}; known: {sorted(known)}")
        values = dict(block)
        if "dilations" in values:
            values["dilations"] = tuple(int(d) for d in values["dilations"])
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("filters", "crop", "crops_per_photo", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"refiner.{name} must be at least 1, got {getattr(self, name)}")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"refiner.dilations must be one or more positive integers, got {list(self.dilations)}")
        if self.crop <= 2 * (self.crop // 8):
            raise ValueError(f"refiner.crop {self.crop} leaves no pixels to learn from")
        if not self.learning_rate > 0:
            raise ValueError(f"refiner.learning_rate must be positive, got {self.learning_rate}")
        if self.train_precision not in PRECISIONS:
            raise ValueError(f"refiner.train_precision is {self.train_precision!r}; it must be one of {', '.join(PRECISIONS)}")


def build_refiner(spec: RefinerSpec):
    """The refinement network: (photo RGB in [0, 1], upsampled probability) -> refined logit, any size.

    The last convolution starts at zero, so before training the logit is
    the probability's own and the mask the bilinear one. The 3x3
    convolutions compute in ``spec.train_precision``; the correction and
    the logit stay float32.
    """
    import keras
    from keras import layers

    inputs = keras.Input((None, None, 4), name="rgb_and_probability")
    x = inputs
    for i, rate in enumerate(spec.dilations):
        x = layers.Conv2D(spec.filters, 3, padding="same", dilation_rate=rate, activation="relu", name=f"conv{i}",
                          dtype=spec.train_precision)(x)
    delta = layers.Conv2D(1, 1, kernel_initializer="zeros", name="correction", dtype="float32")(x)
    prob = keras.ops.clip(inputs[..., 3:4], _CLIP, 1 - _CLIP)
    logit = keras.ops.log(prob) - keras.ops.log(1 - prob) + delta
    return keras.Model(inputs, logit, name="refiner")


def reach(model) -> int:
    """How many pixels around a pixel the network's output depends on (its 3x3 convolutions' dilations, summed)."""
    return sum((layer.kernel_size[0] - 1) // 2 * layer.dilation_rate[0]
               for layer in model.layers if hasattr(layer, "dilation_rate"))


def refiner_input(rgb: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The network's input for a photo: float32 (H, W, 4), the RGB in [0, 1] and the probability on 1/255 steps.

    The probability is rounded to what a ``uint8`` holds, so training crops
    can be stored as bytes and still be exactly what the network sees later.
    """
    out = np.empty((*probs.shape, 4), dtype=np.float32)
    out[..., :3] = rgb
    out[..., :3] *= np.float32(1 / 255)
    out[..., 3] = np.round(probs * 255) / np.float32(255)
    return out


def _band(probs: np.ndarray) -> np.ndarray:
    return (probs > BAND[0]) & (probs < BAND[1])


def photo_crops(rgb: np.ndarray, probs: np.ndarray, truth: np.ndarray, spec: RefinerSpec,
                rng: np.random.Generator) -> np.ndarray:
    """Up to ``spec.crops_per_photo`` ``uint8`` crops (n, crop, crop, 5): RGB, probability, true mask (0/255).

    Centred on random band pixels of one photo (moved inside the photo at its
    borders); none where the photo has no band.
    """
    ys, xs = np.nonzero(_band(probs))
    if not ys.size:
        return np.zeros((0, spec.crop, spec.crop, 5), dtype=np.uint8)
    H, W = probs.shape
    if H < spec.crop or W < spec.crop:
        raise ValueError(f"refiner.crop {spec.crop} is larger than a {W}x{H} photo")
    pick = rng.choice(ys.size, size=min(spec.crops_per_photo, ys.size), replace=False)
    stacked = np.concatenate([rgb, np.round(probs * 255).astype(np.uint8)[..., None],
                              truth.astype(np.uint8)[..., None] * 255], axis=-1)
    out = np.empty((pick.size, spec.crop, spec.crop, 5), dtype=np.uint8)
    for k, i in enumerate(pick):
        y0 = int(np.clip(ys[i] - spec.crop // 2, 0, H - spec.crop))
        x0 = int(np.clip(xs[i] - spec.crop // 2, 0, W - spec.crop))
        out[k] = stacked[y0:y0 + spec.crop, x0:x0 + spec.crop]
    return out


def training_crops(items: pd.DataFrame, pred_paths: Sequence[str], weights: Sequence[float],
                   spec: RefinerSpec, threads: int = 1) -> np.ndarray:
    """Crops of every training photo (:func:`photo_crops`), from its members' predictions, in file order.

    ``threads`` photos are decoded and cropped at once; each photo draws its
    crops from its own generator (the seed and its place in the file), so the
    crops are the same whatever the number of threads.
    """
    rows = items.set_index("img")
    progress = Progress(len(items), "photos cropped", log)

    def crop(job: tuple[int, tuple[str, list[np.ndarray]]]) -> np.ndarray:
        k, (img, maps) = job
        if img not in rows.index:
            raise ValueError(f"{pred_paths[0]}: prediction for {img}, which is not in the training split")
        row = rows.loc[img]
        size = (int(row["height"]), int(row["width"]))
        probs = full_probabilities(maps, weights, size)
        rng = np.random.default_rng([spec.seed, k])
        return photo_crops(load_rgb(row["image_path"], size), probs, load_mask(row["mask_path"]), spec, rng)

    crops = []
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        for photo in pool.map(crop, enumerate(read_members(pred_paths))):
            crops.append(photo)
            progress.update()
    if not crops or not sum(len(c) for c in crops):
        raise ValueError(f"{pred_paths[0]}: no training photo has an uncertain band to learn from")
    return np.concatenate(crops)


def crop_dataset(crops: np.ndarray, spec: RefinerSpec, shuffle: bool = True):
    """Batches (input, truth, loss weight) of ``uint8`` crops, converted to floats one batch at a time.

    Shuffled anew each pass when ``shuffle``; in their order otherwise (the fixed loss sample).
    """
    import tensorflow as tf

    border = spec.crop // 8
    inner = np.zeros((spec.crop, spec.crop, 1), dtype=np.float32)
    inner[border:-border, border:-border] = 1.0

    def to_float(batch: tf.Tensor):
        rgb = tf.cast(batch[..., :3], tf.float32) / 255.0
        probs = tf.cast(batch[..., 3:4], tf.float32) / 255.0
        truth = tf.cast(batch[..., 4:5] > 127, tf.float32)
        weight = tf.cast((probs > BAND[0]) & (probs < BAND[1]), tf.float32) * inner
        return tf.concat([rgb, probs], axis=-1), truth, weight

    data = tf.data.Dataset.from_tensor_slices(crops)
    if shuffle:
        data = data.shuffle(len(crops), seed=spec.seed, reshuffle_each_iteration=True)
    return data.batch(spec.batch_size).map(to_float, num_parallel_calls=1).prefetch(1)


def train_refiner(items_path: str, pred_paths: Sequence[str], weights: Sequence[float], spec: RefinerSpec,
                  model_path: str, facts_path: str, threads: int = 1) -> dict:
    """Train the refinement network on the training photos' predictions; write the model and its facts (JSON).

    ``pred_paths`` are the members' predictions of the training split
    (``items_path``), ``weights`` their shares, as the encode stage mixes them.
    The crops are held in memory as bytes, twice (NumPy's and the dataset's):
    ``crops_per_photo`` x crop^2 x 5 bytes a photo, 0.7 GB each for 1,088
    photos at the defaults, like the training photos the networks cache.
    """
    runtime.configure(threads, seed=spec.seed)
    import keras

    items = pd.read_parquet(items_path, columns=["img", "image_path", "mask_path", "height", "width"])
    start = time.perf_counter()
    crops = training_crops(items, pred_paths, weights, spec, threads)
    log.info("%d crops of %d photos in %.0f s", len(crops), len(items), time.perf_counter() - start)
    sample = crop_dataset(crops[::max(len(crops) // LOSS_SAMPLE, 1)], spec, shuffle=False)
    model = build_refiner(spec)
    steps = -(-len(crops) // spec.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(spec.learning_rate, decay_steps=spec.epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    data = crop_dataset(crops, spec)
    before = float(model.evaluate(sample, verbose=0))
    fit_start = time.perf_counter()
    history = model.fit(data, epochs=spec.epochs, verbose=2)
    seconds = time.perf_counter() - fit_start
    after = float(model.evaluate(sample, verbose=0))
    with files.atomic_path(model_path) as tmp:
        model.save(tmp)
    facts = {
        "photos": len(items), "crops": len(crops), "params": int(model.count_params()), "reach": reach(model),
        "sample_loss": [round(before, 5), round(after, 5)],
        "band_loss": [round(float(v), 5) for v in history.history["loss"]],
        "train_seconds": round(seconds, 1), "crops_per_s": round(spec.epochs * len(crops) / max(seconds, 1e-9), 1),
    }
    log.info("refiner: band loss of a fixed sample of crops %.4f -> %.4f over %d epochs, %.0f s",
             before, after, spec.epochs, seconds)
    files.write_json(facts, facts_path)
    return facts


class Refiner:
    """A trained refinement network, ready to re-decide photos' bands (:meth:`mask`)."""

    def __init__(self, model) -> None:
        import tensorflow as tf

        self.model = model
        self.margin = reach(model)
        self._infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    @classmethod
    def load(cls, path: str | Path) -> Refiner:
        """The refiner saved at ``path``; a clear error when there is none."""
        from carmask.network.inference import load_keras_model

        return cls(load_keras_model(path))

    def logits(self, x: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """The network's logits at the flat pixel indices ``flat`` of the input ``x`` (H, W, 4).

        Computed only on the :data:`TILE`-pixel tiles holding those pixels,
        each with a margin of :attr:`margin` pixels (zeros beyond the photo):
        at least that far inside the photo, the values of one pass over the
        whole photo, for a fraction of the work.
        """
        H, W = x.shape[:2]
        m, side = self.margin, TILE + 2 * self.margin
        rows, cols = np.divmod(flat, W)
        n_w = -(-W // TILE)
        tile_ids, where = np.unique((rows // TILE) * n_w + cols // TILE, return_inverse=True)
        padded = np.zeros((-(-H // TILE) * TILE + 2 * m, n_w * TILE + 2 * m, 4), dtype=np.float32)
        padded[m:m + H, m:m + W] = x
        out = np.empty(flat.size, dtype=np.float32)
        for start in range(0, tile_ids.size, TILES_PER_CALL):
            ids = tile_ids[start:start + TILES_PER_CALL]
            ty, tx = np.divmod(ids, n_w)
            batch = np.stack([padded[y * TILE:y * TILE + side, x_ * TILE:x_ * TILE + side] for y, x_ in zip(ty, tx)])
            logits = np.asarray(self._infer(batch))[..., 0]
            chosen = (where >= start) & (where < start + ids.size)
            k = where[chosen] - start
            out[chosen] = logits[k, m + rows[chosen] - ty[k] * TILE, m + cols[chosen] - tx[k] * TILE]
        return out

    def mask(self, maps: Sequence[np.ndarray], weights: Sequence[float], rgb: np.ndarray, threshold: float) -> np.ndarray:
        """The full-size mask of the weighted mean of ``maps``, its uncertain band re-decided by the network.

        Outside the band it is exactly the bilinear mask
        (:func:`carmask.masks.upsample.mean_mask`); inside, a pixel is car
        where the refined probability is above ``threshold``.
        """
        size = rgb.shape[:2]
        low, high = 255.0 * min(BAND[0], threshold), 255.0 * max(BAND[1], threshold)
        mask, flat, value = pixels_between(maps, weights, size, low, high)
        mask.reshape(-1)[flat] = value > 255.0 * threshold
        flat = flat[(value > 255.0 * BAND[0]) & (value < 255.0 * BAND[1])]
        if flat.size:
            x = refiner_input(rgb, full_probabilities(maps, weights, size))
            cut = np.log(threshold) - np.log1p(-threshold) if 0 < threshold < 1 else np.inf * (threshold - 0.5)
            mask.reshape(-1)[flat] = self.logits(x, flat) > cut
        return mask
