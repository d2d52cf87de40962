"""How close a predict job's forward pass runs to what this CPU can compute: GFLOP/s against a plain matmul's.

The network's multiply-adds are counted from its layers (every Conv2D and
Conv2DTranspose: 2 FLOPs per multiply-add; BatchNorm folded away, the rest
negligible; depthwise convolutions, which the U-Net has none of, are not counted), for the config's submission model or ``--model``, with
``--configfile`` layers on config.yaml, paths from the repository root
(``config/real-80.yaml`` for its 192x288 U-Net). Its forward pass is timed as a predict job runs it: loaded
through ``load_for_inference`` (BatchNorm folded), one thread, the config's
``inference.batch_size`` (``auto``: 32 in bf16, fewer photos in float32 for
large inputs), bf16 where the CPU has bf16 units. Baseline in the same run: the same precision's
square matmul (2048x2048, one thread), the kind of kernel a CPU reaches its
peak on. The ratio says how much a faster implementation of the same network
could still gain.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import add_model_argument, default_model, header, load_config, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.network import runtime  # noqa: E402
from carmask.network.spec import Architecture, Prediction  # noqa: E402
from carmask.planning import settings  # noqa: E402


def network_flops(model) -> float:
    """FLOPs of one photo through ``model``'s convolutions (2 per multiply-add)."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += network_flops(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kh, kw, cin, cout = (layer.kernel.shape[i] for i in range(4))
            if isinstance(layer, keras.layers.Conv2DTranspose):
                cin, cout = cout, cin  # its kernel is (h, w, out, in); each input pixel is spread over k x k outputs
                pixels = np.prod(layer.input.shape[1:3])
            else:
                pixels = np.prod(layer.output.shape[1:3])
            total += 2.0 * pixels * kh * kw * cin * cout  # a grouped kernel already holds cin / groups
    return total


def per_s(fn, seconds: float = 6.0) -> float:
    """Calls per second of ``fn`` after one warm-up call."""
    fn()
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        fn()
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    import tensorflow as tf
    from carmask.network.architectures import build_model
    from carmask.network.inference import load_for_inference, view_averager

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_argument(parser)
    parser.add_argument("--configfile", nargs="*", default=[], help="config layers on config.yaml (from the repository root)")
    args = parser.parse_args()
    cfg = load_config(args.configfile)
    name, block = default_model(cfg, args.model)
    precision = settings.resolve_precision("auto")
    header("forward pass against the CPU's matmul peak (one thread)")
    runtime.configure(1)
    arch = Architecture.from_config(dict(block, encoder_weights="none")).twin("float32")
    batch = settings.resolve_batch_size(cfg["inference"]["batch_size"], precision, arch.size)
    print(f"model: {name} at {arch.size[0]}x{arch.size[1]}x{arch.channels}; precision {precision}; batch {batch}; "
          f"CPU bf16 units: {settings.cpu_has_bf16()}")
    wait_for_idle()
    with tempfile.TemporaryDirectory() as tmp:
        path, model = Path(tmp) / "model.keras", build_model(arch)
        model.save(path)
        flops = network_flops(model)
        how = Prediction(batch_size=batch, tta="none", precision=precision)
        infer = view_averager(load_for_inference(str(path), arch, how), arch.size, how)
        x = np.random.default_rng(0).random((batch, *arch.size, arch.channels), dtype=np.float32)
        net = per_s(lambda: infer(x).numpy()) * batch * flops / 1e9
    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    a = tf.constant(np.random.default_rng(1).random((2048, 2048), dtype=np.float32), dtype=dtype)
    matmul = tf.function(lambda: tf.matmul(a, a))
    peak = per_s(lambda: matmul().numpy()) * 2 * 2048**3 / 1e9
    print(f"network: {flops / 1e9:.2f} GFLOP per photo, {net:.0f} GFLOP/s "
          f"({1000 * flops / 1e9 / net:.2f} ms per photo)")
    print(f"baseline: {dtype.name} matmul 2048x2048, {peak:.0f} GFLOP/s")
    print(f"network / matmul: {net / peak:.2f}")


if __name__ == "__main__":
    main()
