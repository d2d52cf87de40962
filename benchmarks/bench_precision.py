"""float32 against bf16 (Keras mixed_bfloat16) on this CPU: training and inference images/s.

The config's submission model, or ``--model``, at the config's size and at
128x192 (for a model with a nested encoder, MobileNetV2 or VGG19, its forward
pass split into the encoder and the rest), and the RGB U-Net of config/real-80.yaml at its size and at 160x240
(training only: dense convolutions, where bf16 pays), random weights (speed
does not depend on them), the threads a job gets (2). Training: ``model.fit`` steps on a fixed
batch, Adam, bce_dice. Inference: one forward pass of a batch with its
mirror (flip TTA), as the predict stage calls it, at batch 8 and 32. Both
policies in the same run; the ratio is bf16 / float32. That bf16 keeps the
masks (full-size Dice of a trained model) is measured by
``studies/predict_paths.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from _common import add_model_argument, default_model, header, load_config, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.network import runtime  # noqa: E402
from carmask.network.spec import Architecture, ModelSpec  # noqa: E402
from carmask.planning import settings  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16")


def train_rate(arch: Architecture, steps: int = 12, batch: int = 4) -> float:
    import keras

    from carmask.network.architectures import build_model
    from carmask.network.losses import get_loss, get_metrics

    keras.utils.set_random_seed(0)
    model = build_model(arch)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice", False), metrics=get_metrics(False))
    h, w = arch.size
    rng = np.random.default_rng(0)
    x = rng.random((batch * steps, h, w, arch.channels), dtype=np.float32)
    y = (rng.random((batch * steps, h, w, 1)) > 0.5).astype(np.float32)
    model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, epochs=1, verbose=0)  # trace
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return batch * steps / (time.perf_counter() - start)


def infer_rate(arch: Architecture, batch: int, n: int = 256, encoder_only: bool = False) -> float:
    """Photos/s of one forward pass with flip TTA (``encoder_only``: the nested encoder alone)."""
    import keras
    import tensorflow as tf

    from carmask.network.architectures import build_model

    model = build_model(arch)
    shape = (*arch.size, arch.channels)
    if encoder_only:
        model = next(layer for layer in model.layers if isinstance(layer, keras.Model))
        shape = tuple(model.input_shape[1:])  # padded to a multiple of 32

    @tf.function
    def both(x):
        return model(tf.concat([x, x[:, :, ::-1]], axis=0), training=False)

    x = tf.constant(np.random.default_rng(0).random((batch, *shape), dtype=np.float32))
    both(x)
    start, done = time.perf_counter(), 0
    while done < n:
        tf.nest.map_structure(np.asarray, both(x))  # the encoder returns its skips too
        done += batch
    return done / (time.perf_counter() - start)


def resized(arch: Architecture, size: tuple[int, int], precision: str) -> Architecture:
    """``arch`` at input ``size``, computing in ``precision``."""
    return dataclasses.replace(arch, input_height=size[0], input_width=size[1], precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_argument(parser)
    args = parser.parse_args()
    header("precision: float32 and bf16 on this CPU")
    runtime.configure(2)
    print(f"CPU bf16 units (AMX / AVX-512 BF16): {settings.cpu_has_bf16()}")
    cfg = load_config()
    name, block = default_model(cfg, args.model)
    print(f"model: {name}")
    arch = Architecture.from_config(dict(block, encoder_weights="none"))
    wait_for_idle()
    split = arch.name != "unet"  # the pretrained-style encoders are a nested model; the U-Net has none
    keys = [("train", "training, batch 4"), ("infer 8", "inference + flip TTA, batch 8"),
            ("infer 32", "inference + flip TTA, batch 32")] + ([("encoder 32", "  of which the encoder alone")] if split else [])
    for size in (arch.size, (128, 192)):
        rates = {p: {"train": train_rate(resized(arch, size, p)),
                     "infer 8": infer_rate(resized(arch, size, p), 8),
                     "infer 32": infer_rate(resized(arch, size, p), 32)} for p in POLICIES}
        if split:
            for p in POLICIES:
                rates[p]["encoder 32"] = infer_rate(resized(arch, size, p), 32, encoder_only=True)
        print(f"{size[0]}x{size[1]}:")
        for key, label in keys:
            f32, bf16 = rates["float32"][key], rates["mixed_bfloat16"][key]
            print(f"  {label:<32} float32 {f32:6.1f} images/s   bf16 {bf16:6.1f} images/s   ({bf16 / f32:.2f}x)")
        for p in POLICIES if split else ():  # per photo: the whole model, the encoder, the rest (decoder)
            whole, enc = 1000 / rates[p]["infer 32"], 1000 / rates[p]["encoder 32"]
            print(f"  {p}: {whole:.1f} ms per photo with TTA = encoder {enc:.1f} + decoder {whole - enc:.1f}")
    real = real80_model()
    batch = real.training.batch_size
    for size in (real.architecture.size, (160, 240)):
        f32, bf16 = (train_rate(resized(real.architecture, size, p), steps=10, batch=batch) for p in POLICIES)
        print(f"{real.architecture.name} (RGB, {real.architecture.base_filters} filters) {size[0]}x{size[1]}, training, "
              f"batch {batch}: float32 {f32:5.1f} images/s   bf16 {bf16:5.1f} images/s   ({bf16 / f32:.2f}x)")


def real80_model() -> ModelSpec:
    """The submission model's block of config.yaml with config/real-80.yaml layered on it."""
    cfg = load_config(["config/real-80.yaml"])
    return ModelSpec.from_config(cfg["models"][cfg["submission_model"]])


if __name__ == "__main__":
    main()
