"""Logging for pipeline jobs: one log file per job, with periodic progress."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path


def setup(log_path: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send log records, stdout and stderr (TensorFlow's, Keras' epoch lines) to ``log_path``.

    Snakemake keeps a job's log file; sending both streams there means the
    training progress and a crash traceback land beside our own progress lines
    (and Snakemake shows the log of a failed job). The process's file
    descriptors 1 and 2 are redirected too, not only Python's streams:
    TensorFlow's C++ start-up notices (oneDNN, CPU features, absl) write to
    them directly, and would otherwise fill the terminal between Snakemake's
    own lines. Call it once per job process, first thing.
    """
    handlers: list[logging.Handler] = []
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
        for fd in (1, 2):
            os.dup2(stream.fileno(), fd)
        sys.stderr = sys.stdout = stream
        handlers.append(logging.StreamHandler(stream))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("carmask")


class Progress:
    """Logs ``done/total`` with a rate every ``every_s`` seconds and at the end.

    With ``bar`` and a terminal on stderr it draws a progress bar there
    instead, redrawn on every update (a command's user is watching; a job's
    log is not a terminal and keeps the periodic counts).
    """

    def __init__(self, total: int, what: str, logger: logging.Logger, every_s: float = 10.0, bar: bool = False):
        self.total, self.what, self.logger, self.every_s = total, what, logger, every_s
        self.bar = bar and sys.stderr.isatty()
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        rate = self.done / max(now - self.start, 1e-9)
        if self.bar:
            filled = int(30 * self.done / max(self.total, 1))
            left = (self.total - self.done) / max(rate, 1e-9)
            sys.stderr.write(f"\r{self.what} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                             f"{rate:.2f}/s, {left:.0f} s left ")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            self.logger.info("%s: %d/%d (%.1f/s)", self.what, self.done, self.total, rate)
