"""Shared setup for the benchmarks: demo data (made once) and the real sample."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from carmask.demo import generate

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "results" / "bench-demo"
REAL = ROOT.parent / "shared" / "data" / "carvana-sample"


def demo_folder() -> Path:
    """A Kaggle-layout demo folder at full size (2 train cars, 1 test car)."""
    if not (DEMO / "sample_submission.csv").is_file():
        generate(DEMO, n_train_cars=2, n_test_cars=1, views=16, seed=0)
    return DEMO


def real_folder() -> Path | None:
    """The real Carvana sample beside the repo, when it is there."""
    return REAL if (REAL / "train_masks").is_dir() else None


def machine() -> str:
    import os

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu}"


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (seconds): the least disturbed one."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")
