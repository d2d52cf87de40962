"""Shared setup for the benchmarks (and the studies in ``studies/``): demo data (made once) and the real sample.

The plain implementations the benchmarks time as baselines are in
``baselines.py`` beside this file; neither imports from ``tests/``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from carmask.demo.dataset import generate

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


def best_of_interleaved(fns: Sequence[Callable[[], object]], repeat: int = 3) -> list[float]:
    """Best wall time (seconds) of each of ``fns``, run in turn ``repeat`` times.

    Taking turns spreads a noisy machine's slow minutes over all of them, so
    their ratios hold better than those of one ``best_of`` after another.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")


def load_config(layers: Sequence[str] = ()) -> dict:
    """The repository's config.yaml with ``layers`` (paths from the repository root) merged on top, as
    ``--configfile`` does, then checked and completed by the schema as the workflow does."""
    import yaml
    from snakemake.utils import update_config, validate

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for layer in layers:
        update_config(cfg, yaml.safe_load((ROOT / layer).read_text()))
    validate(cfg, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return cfg


def default_model(cfg: dict, name: str | None = None) -> tuple[str, dict]:
    """(name, block) of model block ``name``; by default the submission model (the first of models_to_run when it is "best")."""
    if name is not None:
        if name not in cfg["models"]:
            raise SystemExit(f"--model {name}: config.yaml has no such block; it has {', '.join(cfg['models'])}")
        return name, dict(cfg["models"][name])
    name = cfg["submission_model"]
    if name not in cfg["models"]:
        name = cfg["models_to_run"][0]
    return name, dict(cfg["models"][name])


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model``: the config.yaml block a benchmark measures (:func:`default_model`)."""
    parser.add_argument("--model", help="a config.yaml model block (default: the submission model)")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the printed numbers (call before importing it)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_for_idle(threshold: float = 0.15, max_wait_s: float = 60.0) -> float:
    """Wait (up to ``max_wait_s``) until the CPUs are at most ``threshold`` busy; return the last busy share.

    Benchmarks on a 2-core machine are meaningless while a test suite runs
    beside them; this does not prevent that, it only avoids starting into it,
    and prints a note beside the figures when the wait ran out.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        b0, t0 = _cpu_jiffies()
        time.sleep(1.0)
        b1, t1 = _cpu_jiffies()
        busy = (b1 - b0) / max(t1 - t0, 1)
        if busy <= threshold:
            return busy
        if time.monotonic() >= deadline:
            print(f"note: the CPUs were {busy:.0%} busy with other work at the start")
            return busy


class OtherLoad:
    """Context manager: CPU share that *other* processes used while it was open.

    System-wide busy time from /proc/stat minus this process's and its
    children's CPU time (``os.times``), as a share of all cores. Printed with
    the results so a number taken on a shared machine says so.
    """

    def __enter__(self) -> "OtherLoad":
        import os

        self._sys = _cpu_jiffies()
        t = os.times()
        self._own = t.user + t.system + t.children_user + t.children_system
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        import os

        b1, t1 = _cpu_jiffies()
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system - self._own
        ncpu = os.cpu_count() or 1
        wall = time.perf_counter() - self._wall
        system = (b1 - self._sys[0]) / hz
        self.share = max(0.0, (system - own) / max(wall * ncpu, 1e-9))

    def line(self) -> str:
        note = "" if self.share < 0.1 else " (the machine was shared: timings above are slower than on an idle one)"
        return f"other processes' CPU use during the run: {self.share:.0%} of all cores{note}"


WORKFLOW_FILES = ["Snakefile", "config.yaml", "config", "workflow", "envs"]


def copy_workflow(dest: Path, profiles: bool = False) -> Path:
    """This checkout's workflow (code and config) into ``dest``, replacing an older copy's files.

    Whatever else is in ``dest`` (results/, logs/) stays, so a rerun there
    reuses finished jobs. ``profiles`` copies ``profiles/`` too, so the copy
    runs with the default profile as a user's checkout does.
    """
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES + (["profiles"] if profiles else []):
        src, dst = ROOT / name, dest / name
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return dest
