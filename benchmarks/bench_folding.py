"""BatchNorm folded into the convolutions, against the network as trained: forward passes/s, same run.

The config's submission model, or ``--model`` (random weights: speed does
not depend on them), saved and loaded back through
``carmask.network.inference.load_for_inference``, as a predict job loads it, with and
without folding, in float32 and bf16 (``mixed_bfloat16``), at the config's
size and at 128x192, on one thread (a predict job's). Batch 64, the
first call (tracing) left out. Baseline: the unfolded model in the same
policy; the ratio is folded / unfolded. That folding keeps the masks
(full-size Dice of a trained model) is measured by
``studies/predict_paths.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import add_model_argument, default_model, header, load_config, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.network import runtime  # noqa: E402
from carmask.network.spec import Architecture, Prediction  # noqa: E402
from carmask.planning import settings  # noqa: E402

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
    from carmask.network.architectures import build_model
    from carmask.network.inference import load_for_inference

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_argument(parser)
    args = parser.parse_args()
    header("BatchNorm folding: forward passes/s, folded against unfolded")
    print(f"CPU bf16 units (AMX / AVX-512 BF16): {settings.cpu_has_bf16()}")
    name, block = default_model(load_config(), args.model)
    print(f"model: {name}")
    arch = Architecture.from_config(block).twin("float32")  # random weights: no encoder download
    runtime.configure(1)  # once per process: TensorFlow keeps its first thread settings
    wait_for_idle()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (arch.size, (128, 192)):
            sized = dataclasses.replace(arch, input_height=size[0], input_width=size[1])
            path = Path(tmp) / f"{size[0]}x{size[1]}.keras"
            build_model(sized).save(path)
            print(f"{size[0]}x{size[1]}, one thread, batch 64:")
            for policy in POLICIES:
                how = {fold: Prediction(batch_size=64, tta="none", precision=policy, fold=fold) for fold in (False, True)}
                rates = {fold: forwards_per_s(load_for_inference(str(path), sized, how[fold])[0], (*size, sized.channels))
                         for fold in how}
                print(f"  {policy:<15} unfolded {rates[False]:6.1f}   folded {rates[True]:6.1f} forward passes/s   "
                      f"({rates[True] / rates[False]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
