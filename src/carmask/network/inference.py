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

from carmask import files
from carmask.network import runtime
from carmask.masks.images import photo_batches, quantise
from carmask.logs import Progress
from carmask.masks.probability_maps import PREDICTIONS_ROW_GROUP, PREDICTIONS_SCHEMA, record_batch, timing_path
from carmask.network.spec import TTA_SCALE, Architecture, Prediction

log = logging.getLogger(__name__)


def to_probability(output: np.ndarray, activation: str | None) -> np.ndarray:
    """Model output (batch, h, w, 1) to probabilities (batch, h, w)."""
    if output.shape[-1] != 1:
        raise ValueError(f"the pipeline needs one output channel, the model has {output.shape[-1]}")
    from carmask.network.losses import outputs_logits

    out = output[..., 0]
    if outputs_logits(activation):
        out = 1.0 / (1.0 + np.exp(-out))
    return out


def view_averager(models: Sequence, size: tuple[int, int], how: Prediction):
    """A compiled function from a batch (or, for the ``scale`` modes, a pair of batches) to averaged model outputs.

    ``models`` is the model, followed for the ``scale`` modes by the same
    network built at the second scale (:func:`load_for_inference`); ``size``
    is the model's input (height, width). Every view of a batch runs in one
    call per model (a mirror is stacked onto its batch), and the views'
    outputs are averaged.
    """
    import tensorflow as tf

    flip, scale = how.views
    if len(models) != 1 + scale:
        raise ValueError(f"tta {how.tta!r} needs {1 + scale} models, got {len(models)}")

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

    return infer


def iter_probabilities(
    models: Sequence, paths: Sequence[str], spec: Architecture, how: Prediction, threads: int = 1
) -> Iterator[np.ndarray]:
    """Yield ``uint8`` probability batches (b, h, w) at model size for ``paths`` in order (views: :func:`view_averager`).

    ``threads`` decode the next batches while the network runs (:func:`photo_batches`).
    """
    infer = view_averager(models, spec.size, how)
    sizes = [spec.size] + ([spec.scaled(TTA_SCALE).size] if how.views[1] else [])
    for batch in photo_batches(paths, sizes, spec.channels, how.batch_size, threads):
        yield predict_views(infer, batch, spec.output_activation)


def predict_views(infer, batch: Sequence[np.ndarray], activation: str | None) -> np.ndarray:
    """``uint8`` probabilities (b, h, w) of one batch given as ``uint8`` photos, one array per size ``infer`` takes.

    The photos become float32 in [0, 1], as the network trained on
    (:mod:`carmask.network.datasets`); ``infer`` is a :func:`view_averager`.
    """
    views = [photos.astype(np.float32) / np.float32(255.0) for photos in batch]
    return quantise(to_probability(np.asarray(infer(views[0] if len(views) == 1 else tuple(views))), activation))


def shard_rows(items: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """Rows of shard ``shard`` of ``shards``: contiguous, near-equal blocks."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    bounds = np.linspace(0, len(items), shards + 1).round().astype(int)
    return items.iloc[bounds[shard] : bounds[shard + 1]]


def load_keras_model(model_path: str | Path):
    """The Keras model saved at ``model_path``; a clear error when there is none."""
    import keras

    import carmask.network.losses  # noqa: F401 - registers the custom losses for loading

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, zipfile or OS errors, by format
        raise ValueError(f"{path} is not a Keras model that loads: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a Keras model")
    return model


def load_for_inference(model_path: str, spec: Architecture, how: Prediction) -> list:
    """The trained model computing in ``how.precision``, and its second-scale twin for the ``scale`` views.

    A model is saved with the policy and input size it trained in. To
    predict in another policy (bf16 on a CPU with AMX, say) or at the second
    scale of test-time augmentation, the architecture is rebuilt that way
    and the trained weights are copied in: the same network, other
    arithmetic or another input size. ``how.fold`` merges each BatchNorm into
    the convolution before it (:mod:`carmask.network.folding`).
    """
    from carmask.network.architectures import build_model
    from carmask.network.folding import fold_batchnorm

    model = load_keras_model(model_path)
    weights = model.get_weights()

    def rebuilt(arch: Architecture):
        twin = build_model(arch.twin(how.precision))
        twin.set_weights(weights)
        return twin

    models = [model if how.precision == spec.precision else rebuilt(spec)]
    if how.views[1]:
        models.append(rebuilt(spec.scaled(TTA_SCALE)))
    return [fold_batchnorm(m) for m in models] if how.fold else models


def predict_shard(
    model_path: str, items_path: str, out_path: str, spec: Architecture, how: Prediction,
    shard: int = 0, shards: int = 1, threads: int = 1, timing_out: str | None = None,
) -> None:
    """Predict shard ``shard`` of ``shards`` of a manifest; write its probabilities and its timing atomically.

    ``timing_out`` is the timing file (default: :func:`timing_path` of
    ``out_path``); it records the rate and how the shard was predicted.
    """
    runtime.configure(threads)
    rows = shard_rows(pd.read_parquet(items_path, columns=["img", "image_path"]), shard, shards)
    models = load_for_inference(model_path, spec, how)
    log.info("shard %d/%d: %d images, model %s, %s, tta %s", shard, shards, len(rows), model_path, how.precision, how.tta)
    rate = write_probabilities(models, rows, out_path, spec, how, threads)
    log.info("%.1f images/s", rate)
    files.write_json({"images": len(rows), "images_per_s": round(rate, 3), "precision": how.precision,
                      "batch_size": how.batch_size, "tta": how.tta, "threads": threads}, timing_out or timing_path(out_path))


def write_probabilities(
    models: Sequence, rows: pd.DataFrame, out_path: str | Path, spec: Architecture, how: Prediction, threads: int = 1
) -> float:
    """Stream predictions for ``rows`` into a zstd-compressed parquet file; return images/s (``threads``: :func:`iter_probabilities`).

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
        for probs in iter_probabilities(models, rows["image_path"].tolist(), spec, how, threads):
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
