"""Settings the workflow resolves when it is planned: ensemble weights, the inference precision and batch size.

Standard library only: the Snakefile imports this module at parse time, and
the Snakemake process (with ``--software-deployment-method conda``, say)
need not have numpy, Pillow or TensorFlow. A setting resolved here becomes a
rule parameter, so what it resolved to is recorded with the jobs and a
change (the same config planned on another machine) reruns what depends on it.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path

#: Keras dtype policies a model can train or predict in.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
#: ``inference.batch_size: auto`` in bf16 and fp16: photos per predict batch.
AUTO_BATCH_PHOTOS = 32
#: ... and in float32, the pixels a batch holds at most: 32 photos at 96x144.
AUTO_BATCH_PIXELS_FLOAT32 = 32 * 96 * 144
#: Where the NVIDIA driver lists the GPUs of this machine.
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def normalise_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Weights summing to 1 (equal when ``weights`` is None); they must be positive."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"ensemble: {len(weights)} weights for {n} models")
    if any(not w > 0 for w in weights):
        raise ValueError(f"ensemble: weights must be positive, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


#: Names that make a setting a file rather than a colour or a keyword.
_FILE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".h5", ".keras"})


def names_a_file(value: str | None, keywords: Sequence[str] = ()) -> bool:
    """Whether a setting that takes a keyword, a colour or a path (``cutouts.background``,
    ``encoder_weights``) names a file, judged from the text alone.

    A path has a folder separator or a file suffix, or exists; ``#2e6fd8``,
    ``white`` and the ``keywords`` do not. The workflow then makes the file
    an input of the job that reads it, so replacing it reruns that job, and a
    missing one stops the run before anything starts.
    """
    if value is None or value in keywords:
        return False
    text = str(value)
    return "/" in text or os.sep in text or Path(text).suffix.lower() in _FILE_SUFFIXES or Path(text).exists()


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


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def gpu_usable(gpus_dir: Path = NVIDIA_GPUS) -> bool:
    """Whether TensorFlow here would compute on a GPU, judged without importing it.

    An NVIDIA GPU the driver lists, not hidden by ``CUDA_VISIBLE_DEVICES``,
    and a TensorFlow that is not the CPU-only build (``tensorflow-cpu``).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if _installed("tensorflow-cpu"):
        return False
    try:
        return any(gpus_dir.iterdir())
    except OSError:
        return False


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy ``precision`` means on this machine.

    ``auto``: ``mixed_float16`` where a GPU is usable (tensor cores),
    ``mixed_bfloat16`` on a CPU with bf16 units, ``float32`` elsewhere.
    Other values are checked and returned as they are. The workflow calls
    this when it plans a run, on the machine that plans it: on a cluster
    whose GPU nodes differ from the login node, name the policy instead.
    """
    if precision == "auto":
        if gpu_usable():
            return "mixed_float16"
        return "mixed_bfloat16" if cpu_has_bf16() else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto or one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def resolve_batch_size(batch_size: int | str, precision: str, size: tuple[int, int]) -> int:
    """Photos per predict batch for a model of input ``size`` predicting in ``precision``.

    A number is returned as it is. ``auto``: 32 photos in bf16 and fp16,
    whose kernels want large batches; in float32, as many photos as make
    at most 32 photos at 96x144 (8 at 192x288), at least one: on a CPU
    without bf16 units, larger float32 batches spill the activations out of
    the caches (the 192x288 U-Net's forward pass on an AVX2 CPU: 110 ms per
    photo at 32 photos against 95 at 8, docs/performance.md). The masks are
    the same at any batch size.
    """
    if batch_size == "auto":
        if precision != "float32":
            return AUTO_BATCH_PHOTOS
        return max(1, AUTO_BATCH_PIXELS_FLOAT32 // (size[0] * size[1]))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"inference.batch_size must be auto or a whole number of at least 1, got {batch_size!r}")
    return batch_size
