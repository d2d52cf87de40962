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
