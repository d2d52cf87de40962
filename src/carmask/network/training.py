"""Train one model from its config block and write everything about it.

Outputs (``results/models/{model}/``): ``model.keras``; ``history.csv`` and
``curves.png`` (loss and Dice per epoch, train and val); ``summary.txt``
(layer table, our parameter counts beside the study's); ``training.json``
(time, epochs, parameters). The full-size validation Dice
(``results/metrics/{entry}.json``) is written by the evaluate stage, which scores the validation split through
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

from carmask import files
from carmask.network import runtime
from carmask.network.spec import MONITORS, Architecture, ModelSpec, Training

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


def _summary_text(model, name: str, arch: Architecture) -> str:
    from carmask.network.architectures import STUDY_PARAMETER_COUNTS, parameter_counts

    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"), line_length=120)
    ours = parameter_counts(model)
    lines = [
        f"model {name}: {arch.name} at {arch.input_height}x{arch.input_width}x{arch.channels}",
        f"parameters (this config): total {ours['total']:,}, trainable {ours['trainable']:,}, non-trainable {ours['non_trainable']:,}",
    ]
    study = STUDY_PARAMETER_COUNTS.get(arch.name)
    if study:
        lines.append("parameters (the reference study): " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in study.items()))
    return "\n".join(lines) + "\n\n" + buf.getvalue()


def _optimizer(plan: Training, steps_per_epoch: int) -> tuple[Any, list]:
    """Adam with the configured learning-rate plan, and the callbacks that go with it.

    ``plateau`` halves the rate when the monitored measure stalls. ``cosine``
    anneals it from ``learning_rate`` to 1% of it over ``epochs``: with
    augmented data the validation loss keeps wobbling down, so a plateau rule
    may never fire, and the last low-rate epochs are where the outline sharpens.
    Both stop early after ``patience`` epochs without a better monitored
    measure and keep the best epoch's weights; the rate of each epoch goes
    into the history. ``monitor: dice`` watches the validation Dice instead of
    the loss: an outline-weighted loss can keep rising while the Dice, the
    score that counts, still improves.
    """
    import keras

    watched, mode = MONITORS[plan.monitor]

    def log_rate(epoch: int, logs: dict) -> None:  # before ReduceLROnPlateau: the rate the epoch ran at
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    patience = plan.patience
    callbacks: list = [
        keras.callbacks.EarlyStopping(monitor=watched, mode=mode, patience=patience, restore_best_weights=True),
        keras.callbacks.LambdaCallback(on_epoch_end=log_rate),
    ]
    rate = plan.learning_rate
    if plan.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, plan.epochs * steps_per_epoch), alpha=0.01)
    else:  # plateau
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=watched, mode=mode, factor=0.5, patience=max(1, patience // 2), min_lr=1e-6)
        )
    optimizer = keras.optimizers.Adam(rate)
    return optimizer, callbacks


def _fit(model, spec: ModelSpec, train: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
    """Compile and fit ``model``; the per-epoch history, with the best epoch's weights in the model."""
    from carmask.network.datasets import training_dataset
    from carmask.network.losses import get_loss, get_metrics, outputs_logits

    plan = spec.training
    optimizer, callbacks = _optimizer(plan, steps_per_epoch=math.ceil(len(train) / plan.batch_size))
    from_logits = outputs_logits(spec.architecture.output_activation)
    model.compile(optimizer=optimizer, loss=get_loss(plan.loss, from_logits), metrics=get_metrics(from_logits))
    fit = model.fit(training_dataset(train, spec, training=True), validation_data=training_dataset(val, spec, training=False),
                    epochs=plan.epochs, callbacks=callbacks, verbose=2)
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return history


def _facts(name: str, spec: ModelSpec, model, history: pd.DataFrame, n_train: int, n_val: int, seconds: float) -> dict:
    """What ``training.json`` says of a run: sizes, epochs, the kept epoch, time, parameters."""
    from carmask.network.architectures import parameter_counts

    watched, mode = MONITORS[spec.training.monitor]
    best = int(history[watched].idxmin() if mode == "min" else history[watched].idxmax())
    return {
        "model": name,
        "architecture": spec.architecture.name,
        "input_size": list(spec.architecture.size),
        "n_train_images": n_train,
        "n_val_images": n_val,
        "epochs_run": len(history),
        "best_epoch": best + 1,
        "train_seconds": round(seconds, 2),
        "train_images_per_s": round(n_train * len(history) / seconds, 2),
        "params": parameter_counts(model),
        "best_val_dice_model_size": float(history["val_dice_coef"].iloc[best]),
    }


def train_model(
    name: str,
    train_path: str,
    val_path: str,
    spec: ModelSpec,
    *,
    model_path: str,
    training_path: str,
    history_path: str,
    curves_path: str,
    summary_path: str,
    threads: int = 1,
) -> dict:
    """Train ``name`` per ``spec`` on the split's parquet files and write its five files.

    ``model_path`` the ``.keras`` model, ``training_path`` the facts (JSON,
    also returned), ``history_path`` the per-epoch history (CSV),
    ``curves_path`` its plot (PNG) and ``summary_path`` the layer table with
    the parameter counts beside the study's.
    """
    runtime.configure(threads, seed=spec.training.seed)
    from carmask.network.architectures import build_model

    train = pd.read_parquet(train_path)
    val = pd.read_parquet(val_path)
    model = build_model(spec.architecture)
    log.info("training %s on %d images (%d cars), validating on %d images (%d cars)", name, len(train), train["car"].nunique(), len(val), val["car"].nunique())
    start = time.perf_counter()
    history = _fit(model, spec, train, val)
    train_seconds = time.perf_counter() - start
    facts = _facts(name, spec, model, history, len(train), len(val), train_seconds)
    log.info("%s: trained %d epochs in %.1f s", name, len(history), train_seconds)

    with files.atomic_path(model_path) as tmp:
        model.save(tmp)
    with files.atomic_path(history_path) as tmp:
        history.to_csv(tmp, index=False)
    arch = spec.architecture
    _plot_curves(history, curves_path, f"{name} ({arch.name}, {arch.input_height}x{arch.input_width})")
    files.write_text(_summary_text(model, name, arch), summary_path)
    files.write_json(facts, training_path)
    return facts
