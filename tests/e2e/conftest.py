"""Run the real snakemake on the tiny demo config in temporary copies of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "envs", "profiles", "tests/e2e/tiny.yaml"]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def copy_workflow(dest: Path) -> Path:
    """A fresh working copy of the workflow (code and config, no results)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if not src.exists():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    return dest


def snakemake(
    workdir: Path, *args: str, overrides: tuple[str, ...] = (), check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the tiny config; output captured as text.

    ``--configfile`` takes several values and a repeated one replaces the
    first, so targets and flags go before it and extra config files
    (``overrides``, layered on tiny.yaml) after it.
    """
    cmd = [SNAKEMAKE, "--cores", "2", *args, "--configfile", "tests/e2e/tiny.yaml", *overrides]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run as {rule: count}."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    jobs = dict((line.split()[0], int(line.split()[1])) for line in stats if line.strip())
    jobs.pop("total", None)
    return jobs


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """One complete tiny run, shared by the tests that only read its results."""
    workdir = copy_workflow(tmp_path_factory.mktemp("run"))
    snakemake(workdir)
    return workdir
