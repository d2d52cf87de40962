"""Plain implementations the benchmarks time carmask's fast code against.

Written the common way, separately from the package (and from the tests'
own references in ``tests/reference.py``: benchmarks and tests do not import
from each other), so a speed-up is measured against code that computes the
same thing independently; each benchmark checks the outputs equal first.
"""

from __future__ import annotations

import numpy as np


def kaggle_kernel_encode(mask: np.ndarray) -> str:
    """The run-length encoder most Carvana kernels used: flatten, pad with zeros, ``np.where``, join."""
    pixels = mask.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)
