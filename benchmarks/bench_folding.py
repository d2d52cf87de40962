"""BatchNorm folded into the convolutions, against the network as trained: forward passes/s, same run.

The default model (tuned MobileNetV2 + pix2pix, random weights: speed does
not depend on them) saved and loaded back through
``carmask.predict.load_for_inference``, as a predict job loads it, with and
without folding, in float32 and bf16 (``mixed_bfloat16``), at the config's
size and at 128x192, on one thread (a predict job's). Batch 64, the
first call (tracing) left out. Baseline: the unfolded model in the same
policy; the ratio is folded / unfolded. That folding keeps the masks
(full-size Dice of a trained model) is measured by
``benchmarks/predict_paths.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from _common import default_model, header, load_config, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask import runtime, settings  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16")


def forwards_per_s(model, shape: tuple[int, int, int], batch: int = 64, seconds: float = 8.0) -> float:
    import tensorflow as tf

    infer = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).random((batch, *shape), dtype=np.float32))
    infer(x).numpy()
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        infer(x).numpy()
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    from carmask.models import build_model
    from carmask.predict import load_for_inference

    header("BatchNorm folding: forward passes/s, folded against unfolded")
    print(f"CPU bf16 units (AMX / AVX-512 BF16): {settings.cpu_has_bf16()}")
    _, block = default_model(load_config())
    block = dict(block, encoder_weights="none", precision="float32")
    default_size = (int(block["input_height"]), int(block["input_width"]))
    runtime.configure(1)  # once per process: TensorFlow keeps its first thread settings
    wait_for_idle()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (default_size, (128, 192)):
            cfg = dict(block, input_height=size[0], input_width=size[1])
            path = Path(tmp) / f"{size[0]}x{size[1]}.keras"
            build_model(cfg).save(path)
            print(f"{size[0]}x{size[1]}, one thread, batch 64:")
            for policy in POLICIES:
                rates = {fold: forwards_per_s(load_for_inference(str(path), cfg, policy, "none", fold)[0], (*size, 3))
                         for fold in (False, True)}
                print(f"  {policy:<15} unfolded {rates[False]:6.1f}   folded {rates[True]:6.1f} forward passes/s   "
                      f"({rates[True] / rates[False]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
