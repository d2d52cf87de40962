"""Train one model from its config block and write everything about it.

Outputs (``results/models/{model}/``): ``model.keras``; ``history.csv`` and
``curves.png`` (loss and Dice per epoch, train and val); ``summary.txt``
(layer table, our parameter counts beside the study's); ``training.json``
(time, epochs, parameters). The full-size validation Dice (``metrics.json``)
is written by the evaluate stage, which scores the validation split through
the very predict and encode rules that make the submission, so changing the
threshold re-scores without retraining.
"""

from __future__ import annotations

import io
import logging
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from carmask import files, runtime

log = logging.getLogger(__name__)


def _plot_curves(history: pd.DataFrame, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "dice_coef", "Dice (model size)")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                ax.plot(history["epoch"], history[prefix + key], style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _summary_text(model, name: str, cfg: dict) -> str:
    from carmask.models import STUDY_PARAMETER_COUNTS, parameter_counts

    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"), line_length=120)
    ours = parameter_counts(model)
    lines = [
        f"model {name}: {cfg['architecture']} at {cfg['input_height']}x{cfg['input_width']}x{cfg['channels']}",
        f"parameters (this config): total {ours['total']:,}, trainable {ours['trainable']:,}, non-trainable {ours['non_trainable']:,}",
    ]
    study = STUDY_PARAMETER_COUNTS.get(cfg["architecture"])
    if study:
        lines.append("parameters (the reference study): " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in study.items()))
    return "\n".join(lines) + "\n\n" + buf.getvalue()


def _optimizer(cfg: dict, steps_per_epoch: int) -> tuple[Any, list]:
    """Adam with the configured learning-rate plan, and the callbacks that go with it.

    ``plateau`` halves the rate when the validation loss stalls. ``cosine``
    anneals it from ``learning_rate`` to 1% of it over ``epochs``: with
    augmented data the validation loss keeps wobbling down, so a plateau rule
    may never fire, and the last low-rate epochs are where the outline sharpens.
    Both stop early after ``patience`` epochs without a better validation
    loss and keep the best weights; the rate of each epoch goes into the history.
    """
    import keras

    def log_rate(epoch: int, logs: dict) -> None:  # before ReduceLROnPlateau: the rate the epoch ran at
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    patience = int(cfg["patience"])
    callbacks: list = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.LambdaCallback(on_epoch_end=log_rate),
    ]
    rate = float(cfg["learning_rate"])
    kind = cfg["lr_schedule"]
    if kind == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, int(cfg["epochs"]) * steps_per_epoch), alpha=0.01)
    elif kind == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience // 2), min_lr=1e-6)
        )
    else:
        raise ValueError(f"lr_schedule must be 'plateau' or 'cosine', got {kind!r}")
    optimizer = keras.optimizers.Adam(rate)
    return optimizer, callbacks


def train_model(
    name: str,
    train_path: str,
    val_path: str,
    cfg: dict,
    *,
    model_path: str,
    training_path: str,
    history_path: str,
    curves_path: str,
    summary_path: str,
    threads: int = 1,
) -> dict:
    """Train ``name`` per ``cfg`` on the split's parquet files and write its five files.

    ``model_path`` the ``.keras`` model, ``training_path`` the facts (JSON,
    also returned), ``history_path`` the per-epoch history (CSV),
    ``curves_path`` its plot (PNG) and ``summary_path`` the layer table with
    the parameter counts beside the study's.
    """
    runtime.configure(threads, seed=int(cfg["seed"]))
    from carmask.data import training_dataset
    from carmask.losses import get_loss, get_metrics, outputs_logits
    from carmask.models import build_model, parameter_counts

    train = pd.read_parquet(train_path)
    val = pd.read_parquet(val_path)
    optimizer, callbacks = _optimizer(cfg, steps_per_epoch=math.ceil(len(train) / int(cfg["batch_size"])))
    model = build_model(cfg)
    from_logits = outputs_logits(cfg["output_activation"])
    model.compile(
        optimizer=optimizer,
        loss=get_loss(cfg["loss"], from_logits),
        metrics=get_metrics(from_logits),
    )
    train_ds = training_dataset(train, cfg, training=True)
    val_ds = training_dataset(val, cfg, training=False)
    log.info("training %s on %d images (%d cars), validating on %d images (%d cars)", name, len(train), train["car"].nunique(), len(val), val["car"].nunique())
    start = time.perf_counter()
    fit = model.fit(train_ds, validation_data=val_ds, epochs=int(cfg["epochs"]), callbacks=callbacks, verbose=2)
    train_seconds = time.perf_counter() - start
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))

    facts = {
        "model": name,
        "architecture": cfg["architecture"],
        "input_size": [int(cfg["input_height"]), int(cfg["input_width"])],
        "n_train_images": len(train),
        "n_val_images": len(val),
        "epochs_run": len(history),
        "best_epoch": int(history["val_loss"].idxmin()) + 1,
        "train_seconds": round(train_seconds, 2),
        "train_images_per_s": round(len(train) * len(history) / train_seconds, 2),
        "params": parameter_counts(model),
        "best_val_dice_model_size": float(history["val_dice_coef"].iloc[int(history["val_loss"].idxmin())]),
    }
    log.info("%s: trained %d epochs in %.1f s", name, len(history), train_seconds)

    with files.atomic_path(model_path) as tmp:
        model.save(tmp)
    with files.atomic_path(history_path) as tmp:
        history.to_csv(tmp, index=False)
    _plot_curves(history, curves_path, f"{name} ({cfg['architecture']}, {cfg['input_height']}x{cfg['input_width']})")
    files.write_text(_summary_text(model, name, cfg), summary_path)
    files.write_json(facts, training_path)
    return facts
