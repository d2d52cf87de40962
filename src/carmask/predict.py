"""Batched inference: photos in, ``uint8`` probabilities at model size out.

Predictions are stored at model resolution (never upsampled here): a
320x480 probability map is 150 KB raw and a few KB compressed, where a
full-size one would be 2.5 MB. The encode stage brings them to full size.
Each shard is streamed to a parquet file one batch at a time, so memory is
bounded by the batch, not by the shard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from carmask import files, runtime
from carmask.images import quantise
from carmask.logs import Progress
from carmask.predictions import PREDICTIONS_ROW_GROUP, PREDICTIONS_SCHEMA, record_batch, timing_path
from carmask.settings import resolve_precision

log = logging.getLogger(__name__)


def to_probability(output: np.ndarray, activation: str | None) -> np.ndarray:
    """Model output (batch, h, w, 1) to probabilities (batch, h, w)."""
    if output.shape[-1] != 1:
        raise ValueError(f"the pipeline needs one output channel, the model has {output.shape[-1]}")
    from carmask.losses import outputs_logits

    out = output[..., 0]
    if outputs_logits(activation):
        out = 1.0 / (1.0 + np.exp(-out))
    return out


#: Test-time augmentation: which extra views of each photo are predicted and
#: averaged with it. ``flip``: its mirror image (Carvana cars are
#: near-symmetric views, so the mirror is a free second opinion); ``scale``:
#: the photo decoded :data:`TTA_SCALE` times larger, its prediction shrunk
#: back to model size; ``flip_scale``: both, and the larger photo's mirror.
TTA_MODES: dict[str, tuple[bool, bool]] = {
    "none": (False, False),
    "flip": (True, False),
    "scale": (False, True),
    "flip_scale": (True, True),
}
#: The second scale: the car 25% larger, so the decoder sees its outline over more pixels.
TTA_SCALE = 1.25


def tta_views(tta: str) -> tuple[bool, bool]:
    """(flip, scale) of an ``inference.tta`` mode."""
    try:
        return TTA_MODES[tta]
    except KeyError:
        raise ValueError(f"inference.tta is {tta!r}; it must be one of {sorted(TTA_MODES)}") from None


def second_scale(cfg: dict) -> dict:
    """The model block at :data:`TTA_SCALE` times its input size."""
    return dict(cfg, input_height=round(int(cfg["input_height"]) * TTA_SCALE),
                input_width=round(int(cfg["input_width"]) * TTA_SCALE))


def iter_probabilities(models: Sequence, paths: Sequence[str], cfg: dict, batch_size: int, tta: str) -> Iterator[np.ndarray]:
    """Yield ``uint8`` probability batches (b, h, w) at model size for ``paths`` in order.

    ``models`` is the model, followed for the ``scale`` modes by the same
    network built at the second scale (:func:`load_for_inference`). Every view of a
    batch runs in one call per model (a mirror is stacked onto its batch),
    and the views' outputs are averaged.
    """
    import tensorflow as tf

    from carmask.data import image_dataset, input_shape

    if not len(paths):
        return  # an empty shard (more shards than images)
    flip, scale = tta_views(tta)
    if len(models) != 1 + scale:
        raise ValueError(f"tta {tta!r} needs {1 + scale} models, got {len(models)}")
    activation = cfg["output_activation"]
    size, channels = input_shape(cfg)

    def views(model, x: tf.Tensor) -> tf.Tensor:
        if not flip:
            return model(x, training=False)
        both = model(tf.concat([x, x[:, :, ::-1]], axis=0), training=False)
        n = tf.shape(x)[0]
        return (both[:n] + both[n:, :, ::-1]) / 2.0

    @tf.function(reduce_retracing=True)
    def infer(batch) -> tf.Tensor:
        if not scale:
            return views(models[0], batch)
        x, larger = batch
        shrunk = tf.image.resize(views(models[1], larger), size, method="area")
        return (views(models[0], x) + shrunk) / 2.0

    second = input_shape(second_scale(cfg))[0] if scale else None
    # Take exactly the batches there are instead of waiting for tf.data's
    # end-of-sequence, which took 30-40 s after the last batch of a large
    # shard (measured on 1,000 and 6,254 photos).
    n_batches = -(-len(paths) // batch_size)
    for _, batch in zip(range(n_batches), image_dataset(paths, size, channels, batch_size, second)):
        yield quantise(to_probability(infer(batch).numpy(), activation))


def shard_rows(items: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """Rows of shard ``shard`` of ``shards``: contiguous, near-equal blocks."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    bounds = np.linspace(0, len(items), shards + 1).round().astype(int)
    return items.iloc[bounds[shard] : bounds[shard + 1]]


def load_for_inference(model_path: str, cfg: dict, precision: str = "float32", tta: str = "none", fold: bool = True) -> list:
    """The trained model computing in ``precision`` (a Keras dtype policy), and its second-scale twin for ``tta``.

    A model is saved with the policy and input size it trained in. To
    predict in another policy (bf16 on a CPU with AMX, say) or at the second
    scale of test-time augmentation, the architecture is rebuilt from its
    config block that way and the trained weights are copied in: the same
    network, other arithmetic or another input size. ``fold`` merges each
    BatchNorm into the convolution before it (:mod:`carmask.folding`), the
    same function in fewer passes; ``False`` predicts with the network as
    trained (benchmarks compare the two).
    """
    import keras

    import carmask.losses  # noqa: F401 - registers the custom losses for loading
    from carmask.folding import fold_batchnorm
    from carmask.models import build_model

    model = keras.models.load_model(model_path, compile=False)
    weights = model.get_weights()

    def rebuilt(block: dict):
        twin = build_model(dict(block, precision=precision, encoder_weights="none"))
        twin.set_weights(weights)
        return twin

    models = [model if precision == cfg.get("precision", "float32") else rebuilt(cfg)]
    if tta_views(tta)[1]:
        models.append(rebuilt(second_scale(cfg)))
    return [fold_batchnorm(m) for m in models] if fold else models


def predict_shard(
    model_path: str,
    items_path: str,
    out_path: str,
    cfg: dict,
    shard: int,
    shards: int,
    batch_size: int,
    tta: str,
    threads: int = 1,
    precision: str = "float32",
    timing_out: str | None = None,
    fold: bool = True,
) -> None:
    """Predict one shard of a manifest; write its probabilities and its timing atomically.

    ``timing_out`` is the timing file (default: :func:`timing_path` of ``out_path``).
    ``fold``: see :func:`load_for_inference`.

    ``precision`` is ``inference.precision``: a Keras dtype policy or ``auto``
    (see :func:`carmask.settings.resolve_precision`; the workflow passes it resolved); the timing file records
    the policy used.
    """
    runtime.configure(threads)
    precision = resolve_precision(precision)
    rows = shard_rows(pd.read_parquet(items_path, columns=["img", "image_path"]), shard, shards)
    models = load_for_inference(model_path, cfg, precision, tta, fold)
    log.info("shard %d/%d: %d images, model %s, %s, tta %s", shard, shards, len(rows), model_path, precision, tta)
    rate = write_probabilities(models, rows, out_path, cfg, batch_size, tta)
    log.info("%.1f images/s", rate)
    files.write_json({"images": len(rows), "images_per_s": round(rate, 3), "precision": precision,
                      "batch_size": batch_size, "tta": tta, "threads": threads}, timing_out or timing_path(out_path))


def write_probabilities(models: Sequence, rows: pd.DataFrame, out_path: str | Path, cfg: dict, batch_size: int, tta: str) -> float:
    """Stream predictions for ``rows`` into a zstd-compressed parquet file; return images/s.

    The rate leaves out the first batch, which pays for tracing. The file
    holds nothing that varies between runs (no timings), so the same model,
    photos and settings give the same bytes.
    """
    names = rows["img"].tolist()
    progress = Progress(len(names), "predicted", log)
    start_time = time.perf_counter()
    warm: tuple[int, float] | None = None
    with files.atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, PREDICTIONS_SCHEMA, compression="zstd") as writer:
        start = 0
        pending: list[pa.RecordBatch] = []
        for probs in iter_probabilities(models, rows["image_path"].tolist(), cfg, batch_size, tta):
            b = len(probs)
            pending.append(record_batch(names[start : start + b], probs))
            start += b
            progress.update(b)
            if warm is None:  # the first batch pays for tracing: leave it out of the rate
                warm = (start, time.perf_counter())
            if sum(p.num_rows for p in pending) >= PREDICTIONS_ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending))
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending))
        if start != len(names):
            raise RuntimeError(f"predicted {start} images, expected {len(names)}")
        if not names:
            writer.write_table(PREDICTIONS_SCHEMA.empty_table())
    end = time.perf_counter()
    if warm is not None and warm[0] < len(names):
        return (len(names) - warm[0]) / max(end - warm[1], 1e-9)
    return len(names) / max(end - start_time, 1e-9)
