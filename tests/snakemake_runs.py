"""Running the real snakemake in temporary copies of the workflow, and reading its plans.

Tests never run snakemake in the repository itself: its results/, logs/ and
.snakemake/ belong to the user's own runs (`make run`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "config", "workflow", "envs", "profiles", "tests/e2e/tiny.yaml"]
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


def run_snakemake(
    workdir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run this environment's snakemake in ``workdir`` with ``args``; output captured as text.

    ``env`` adds variables (e.g. PYTHONPATH to a copy of the package).
    """
    cmd = [SNAKEMAKE, *args]
    full_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run as {rule: count}."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    if "Job stats:" not in text:
        raise ValueError(f"no 'Job stats' in snakemake's output:\n{text[-3000:]}")
    stats = text.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    jobs = dict((line.split()[0], int(line.split()[1])) for line in stats if line.strip())
    jobs.pop("total", None)
    return jobs


_JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n?)*)", re.M)


def planned_job_list(proc: subprocess.CompletedProcess) -> list[str]:
    """Every job of a dry run as ``rule`` or ``rule[key=value,...]`` (its wildcards), sorted."""
    text = proc.stdout + proc.stderr
    jobs = []
    for rule, body in _JOB.findall(text):
        found = re.search(r"^\s+wildcards: (.*)$", body, re.M)
        jobs.append(f"{rule}[{found.group(1).replace(' ', '')}]" if found else rule)
    return sorted(jobs)
