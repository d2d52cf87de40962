"""Training and inference speed of the four architectures at their configured sizes.

For every block under ``models`` in config.yaml (``--models a,b`` picks some),
built as configured with random weights (``encoder_weights: none``) and
compiled as ``carmask.network.training`` does (Adam, the block's loss, Dice and accuracy
metrics):

- first-step seconds: the first ``model.fit`` step, i.e. graph tracing plus
  one step, which every training job pays once;
- training images/s: further ``model.fit`` steps on random tensors at the
  block's ``batch_size`` (the first step is excluded), from the median time
  between step ends (robust to a disturbed step on a shared machine);
- inference images/s: a ``tf.function`` forward pass (``training=False``) at
  batch 8, after a warm-up call, from the median call time;
- parameter counts (``carmask.network.architectures.parameter_counts``).

There is no baseline model: the table compares the architectures with each
other (ratios are against the config's ``submission_model``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from _common import OtherLoad, default_model, header, load_config, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from carmask.network.architectures import build_model, parameter_counts  # noqa: E402
from carmask.network.losses import dice_coef, get_loss  # noqa: E402
from carmask.network.runtime import configure  # noqa: E402
from carmask.network.spec import ModelSpec  # noqa: E402

INFER_BATCH = 8
TRAIN_SECONDS = 6.0  # timed training per model, roughly
INFER_SECONDS = 3.0


def measure(name: str, block: dict) -> dict:
    spec = ModelSpec.from_config(dict(block, encoder_weights="none"))
    arch, plan = spec.architecture, spec.training
    h, w, c = arch.input_height, arch.input_width, arch.channels
    bs = plan.batch_size
    keras.utils.set_random_seed(0)
    model = build_model(arch)
    model.compile(
        optimizer=keras.optimizers.Adam(plan.learning_rate),
        loss=get_loss(plan.loss),
        metrics=[dice_coef, "binary_accuracy"],
    )
    rng = np.random.default_rng(0)

    def data(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.random((n, h, w, c), dtype=np.float32)
        y = (rng.random((n, h, w, 1)) > 0.5).astype(np.float32)
        return x, y

    class StepTimes(keras.callbacks.Callback):
        """Wall time at the end of every training step (the loss is read, so the step has finished)."""

        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            float((logs or {}).get("loss", 0.0))
            self.ends.append(time.perf_counter())

    def fit(steps: int) -> tuple[float, list[float]]:
        """Wall time of one fit() over ``steps`` batches, and the times between its step ends."""
        x, y = data(steps * bs)
        times = StepTimes()
        start = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0, callbacks=[times])
        return time.perf_counter() - start, list(np.diff(times.ends))

    first_step, _ = fit(1)
    probe = fit(2)[0] / 2
    steps = max(4, min(40, math.ceil(TRAIN_SECONDS / probe)))
    _, intervals = fit(steps + 1)  # the first step of a fit() call carries its setup: timed from its end
    train_rate = bs / float(np.median(intervals))

    forward = tf.function(lambda x: model(x, training=False))
    x = tf.constant(data(INFER_BATCH)[0])
    forward(x).numpy()  # trace + warm-up
    calls: list[float] = []
    start = time.perf_counter()
    while len(calls) < 3 or time.perf_counter() - start < INFER_SECONDS:
        t = time.perf_counter()
        forward(x).numpy()
        calls.append(time.perf_counter() - t)
    infer_rate = INFER_BATCH / float(np.median(calls))

    counts = parameter_counts(model)
    keras.backend.clear_session()
    return {
        "name": name,
        "arch": arch.name,
        "size": f"{h}x{w}x{c}",
        "batch": bs,
        "params": counts["total"],
        "trainable": counts["trainable"],
        "first_step_s": first_step,
        "train_steps": steps,
        "train_rate": train_rate,
        "infer_rate": infer_rate,
    }


def main() -> None:
    cfg = load_config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(cfg["models"]), help="comma-separated model blocks (default: all)")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in cfg["models"]]
    if unknown:
        parser.error(f"unknown models {unknown}; config.yaml defines {list(cfg['models'])}")

    header("models: training and inference speed at the configured sizes")
    configure(2)  # what the train and predict rules give a job
    default_name, _ = default_model(cfg)
    wait_for_idle()
    rows = []
    with OtherLoad() as load:
        for name in names:
            with OtherLoad() as one:
                rows.append(measure(name, cfg["models"][name]))
            r = rows[-1]
            r["other"] = one.share
            print(f"  measured {name}: first step {r['first_step_s']:.1f} s, {r['train_steps']} timed steps", flush=True)

    print(f"{'model':27} {'input':>11} {'batch':>5} {'params':>11} {'trainable':>11} {'first-step s':>12} "
          f"{'train img/s':>11} {'infer img/s':>11} {'other load':>10}")
    for r in rows:
        print(f"{r['name']:27} {r['size']:>11} {r['batch']:>5} {r['params']:>11,} {r['trainable']:>11,} "
              f"{r['first_step_s']:>12.1f} {r['train_rate']:>11.1f} {r['infer_rate']:>11.1f} {r['other']:>10.0%}")
    ref = next((r for r in rows if r["name"] == default_name), None)
    if ref is not None:
        for r in rows:
            if r is not ref:
                print(f"{r['name']} vs {default_name} (submission model): training {r['train_rate'] / ref['train_rate']:.2f}x, "
                      f"inference {r['infer_rate'] / ref['infer_rate']:.2f}x")
    print(f"inference at batch {INFER_BATCH}, tf.function, training=False; TF threads 2; "
          f"other load: CPU share other processes used while that model was measured")
    print(load.line())


if __name__ == "__main__":
    main()
