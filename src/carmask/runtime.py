"""TensorFlow's process-wide settings for a job: threads and deterministic kernels.

Train and predict jobs both start here, before TensorFlow runs anything,
so that a job uses the cores Snakemake gave it and computes the same bits
every time it runs with the same inputs.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def configure(threads: int, seed: int | None = None) -> None:
    """Set TensorFlow's thread pools to ``threads`` and turn on deterministic ops.

    Thread counts are part of the arithmetic (they decide how sums are
    split), so the same ``threads`` give the same bits. Deterministic ops
    make a GPU pick reproducible kernels too: without them, convolutions and
    reductions on a GPU may add in a different order from run to run, and
    predicted probabilities, hence mask outlines, differ in boundary pixels.
    ``seed`` (training) also seeds Python, NumPy and TensorFlow. Must run
    before TensorFlow executes anything; thread settings made later are
    ignored with a debug message.
    """
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    except RuntimeError:
        log.debug("TensorFlow already initialised; thread settings unchanged")
    for gpu in tf.config.list_physical_devices("GPU"):
        try:  # several predict jobs may share one GPU: each takes what it needs, not all of it
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            log.debug("TensorFlow already initialised; GPU memory growth unchanged")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX-512 BF16).

    Elsewhere TensorFlow emulates bf16 and it is several times slower than
    float32, so ``auto`` must not pick it there.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy ``precision`` means on this machine.

    ``auto``: ``mixed_float16`` on a GPU (tensor cores), ``mixed_bfloat16`` on
    a CPU with bf16 units, ``float32`` elsewhere. Other values are returned
    as they are.
    """
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"
