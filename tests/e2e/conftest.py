"""Run the real snakemake on the tiny demo config in temporary copies of the workflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ..snakemake_runs import copy_workflow, run_snakemake


def snakemake(
    workdir: Path, *args: str, overrides: tuple[str, ...] = (), check: bool = True, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the tiny config; output captured as text.

    ``--configfile`` takes several values and a repeated one replaces the
    first, so targets and flags go before it and extra config files
    (``overrides``, layered on tiny.yaml) after it.
    """
    return run_snakemake(
        workdir, "--cores", "2", *args, "--configfile", "tests/e2e/tiny.yaml", *overrides, env=env, check=check, timeout=timeout
    )


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """One complete tiny run, shared by the tests that only read its results."""
    workdir = copy_workflow(tmp_path_factory.mktemp("run"))
    proc = snakemake(workdir)
    (workdir / "snakemake.out").write_text(proc.stdout + proc.stderr)  # what the terminal showed
    return workdir
