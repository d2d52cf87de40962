"""The tiny demo workflow end to end through a real one-node SLURM cluster.

tests/slurm/setup_slurm.sh installs (Debian packages, when missing) and starts
munged, slurmctld and slurmd on this machine; that changes the machine and
needs root, so the module runs only with CARMASK_TEST_SLURM=1 (CI sets it) and
as root, and is skipped otherwise with the reason shown by `pytest -ra`. The workflow runs in a
fresh copy of the repository with

    snakemake --profile profiles/slurm --profile tests/slurm/profile \
        results/submission.csv --configfile tests/e2e/tiny.yaml

and the tests check that every job really went through sbatch (job ids in
Snakemake's output, `scontrol` records, the jobs' own logs), that the GPU rules
asked for a GPU in the GPU partition and the others did not, that the jobs ran
the venv's Snakemake, and that the submission is byte-identical to the one of
a local run (`snakemake --cores 2` with the same config: the e2e suite's shared
`finished_run` when there is one).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "tests" / "slurm" / "setup_slurm.sh"
# The tests run with the venv's python; its snakemake sits next to it.
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"
TARGET = "results/submission.csv"
CONFIG = "tests/e2e/tiny.yaml"
# What a copy of the repository needs to run the workflow (results/, logs/ and
# .snakemake/ are written relative to the working directory).
COPIED = ["Snakefile", "config.yaml", "workflow", "envs", "profiles", CONFIG, "tests/slurm/profile"]
# Partitions of the test cluster (see setup_slurm.sh); debug is the default one.
CPU_PARTITION, GPU_PARTITION = "cpu", "gpu"
GPU_RULES = {"train", "predict"}
RUN_TIMEOUT = 600  # seconds per run


@dataclass
class Run:
    workdir: Path
    log: Path
    returncode: int
    seconds: float

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-n:])


def _setup(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SETUP), action],
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k != "SLURM_CONF"},
    )


#: Set to 1 to run this module: it installs SLURM with apt, writes /etc/slurm
#: and starts daemons, right for CI (.ci/run sets it), a surprise on a
#: developer's machine.
OPT_IN = "CARMASK_TEST_SLURM"


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(reason=f"SLURM e2e: installs and starts a SLURM cluster on this machine; set {OPT_IN}=1 to run it")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(reason="SLURM e2e: needs root to install and start munged/slurmctld/slurmd")
    if not SNAKEMAKE.exists():
        pytest.skip(reason=f"SLURM e2e: no snakemake next to {sys.executable}")
    proc = _setup("start")
    if proc.returncode == 77:
        reason = (proc.stderr.strip().splitlines() or ["unknown reason"])[-1]
        pytest.skip(reason=f"SLURM e2e: {reason}")
    if proc.returncode != 0:
        _setup("stop")
        pytest.fail(f"setup_slurm.sh start failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    try:
        yield
    finally:
        proc = _setup("stop")
        assert proc.returncode == 0, f"setup_slurm.sh stop failed:\n{proc.stdout}\n{proc.stderr}"


def _copy_repo(dest: Path, source: Path = REPO) -> Path:
    """A fresh working copy: COPIED from ``source``, or from the repository
    for what ``source`` lacks."""
    ignore = shutil.ignore_patterns("results", "logs", ".snakemake", "__pycache__", "*.pyc")
    for rel in COPIED:
        src, dst = (source / rel if (source / rel).exists() else REPO / rel), dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        else:
            shutil.copy2(src, dst)
    return dest


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # Nothing from an enclosing SLURM job, another profile or a real account.
        if not k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "CARMASK_SLURM_")) and k != "SNAKEMAKE_PROFILE"
    }
    # Jobs inside SLURM run `python -m snakemake`: the venv must come first on
    # the PATH that sbatch --export=ALL hands to them.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _run(cmd: list[str], workdir: Path, env: dict[str, str], log: Path) -> Run:
    t0 = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # snakemake cancels its SLURM jobs on SIGINT
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = -1
    return Run(workdir, log, rc, time.monotonic() - t0)


@pytest.fixture(scope="module")
def local_run(slurm_cluster, request, tmp_path_factory) -> Path:
    """The working directory of a complete local run of the tiny config.

    That is tests/e2e/conftest.py's session-wide `finished_run` (snakemake
    --cores 2 --configfile tests/e2e/tiny.yaml), already done by the time
    `make test` gets here; without that fixture, a run of our own. Asks for
    the cluster first, so that a machine without one skips before running.
    """
    try:
        return request.getfixturevalue("finished_run")
    except pytest.FixtureLookupError:
        pass
    workdir = _copy_repo(tmp_path_factory.mktemp("local_e2e"))
    cmd = [str(SNAKEMAKE), "--cores", "2", TARGET, "--configfile", CONFIG]
    run = _run(cmd, workdir, _env(), workdir / "local.log")
    assert run.returncode == 0, f"the local run failed (rc {run.returncode}):\n{run.tail()}"
    return workdir


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, local_run, tmp_path_factory) -> Run:
    """The same workflow through SLURM, in a fresh copy of the local run's
    workflow and config (so that edits to the repository since then cannot
    make the two runs differ)."""
    base = tmp_path_factory.mktemp("slurm_e2e")
    workdir = _copy_repo(base / "work", source=local_run)
    cmd = [
        str(SNAKEMAKE), "--profile", "profiles/slurm", "--profile", "tests/slurm/profile",
        "--workflow-profile", "none", TARGET, "--configfile", CONFIG,
    ]  # fmt: skip
    env = _env(CARMASK_SLURM_PARTITION=CPU_PARTITION, CARMASK_SLURM_GPU_PARTITION=GPU_PARTITION)
    run = _run(cmd, workdir, env, base / "slurm.log")
    print(f"\nSLURM run: {run.seconds:.0f} s (log: {run.log})")
    return run


def _slurm_jobs(run: Run) -> dict[int, str]:
    """SLURM job id -> rule name, from Snakemake's own output."""
    rule_of_job: dict[str, str] = {}
    for m in re.finditer(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", run.output, re.M):
        rule_of_job[m.group(2)] = m.group(1)
    submitted = re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", run.output, re.M)
    return {int(slurm_id): rule_of_job.get(job_id, "?") for job_id, slurm_id in submitted}


def _scontrol(job_id: int) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-d", "-o", "show", "job", str(job_id)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, f"scontrol show job {job_id}: {out.stderr}"
    return dict(re.findall(r"(\S+?)=(\S*)", out.stdout))


def test_slurm_run_succeeds(slurm_run):
    assert slurm_run.returncode == 0, f"SLURM run failed (rc {slurm_run.returncode}); last lines:\n{slurm_run.tail()}"


def test_every_job_went_through_sbatch(slurm_run):
    run = slurm_run
    assert run.returncode == 0, f"SLURM run failed; last lines:\n{run.tail()}"
    jobs = _slurm_jobs(run)
    planned = re.findall(r"^rule (\w+):$", run.output, re.M)  # not "localrule"
    assert jobs, "no 'submitted with SLURM jobid' lines in Snakemake's output"
    assert len(jobs) == len(planned), f"{len(planned)} jobs planned, {len(jobs)} submitted to SLURM"
    assert {"demo_data", "train", "predict", "encode", "merge"} <= set(jobs.values())
    for job_id, rule in jobs.items():
        info = _scontrol(job_id)
        assert info.get("JobState") == "COMPLETED", f"SLURM job {job_id} ({rule}): {info.get('JobState')}"
        assert info.get("Comment", "").startswith(f"rule_{rule}"), info.get("Comment")
        assert info.get("WorkDir") == str(run.workdir)


def test_gpu_rules_get_a_gpu_and_the_others_do_not(slurm_run):
    jobs = _slurm_jobs(slurm_run)
    assert GPU_RULES <= set(jobs.values())
    for job_id, rule in jobs.items():
        info = _scontrol(job_id)
        gpus = info.get("TresPerJob", "")
        if rule in GPU_RULES:
            assert info.get("Partition") == GPU_PARTITION, f"{rule}: {info.get('Partition')}"
            assert gpus == "gres:gpu:1", f"{rule} asked for {gpus!r}"
        else:
            assert info.get("Partition") == CPU_PARTITION, f"{rule}: {info.get('Partition')}"
            assert "gpu" not in gpus, f"{rule} asked for {gpus!r}"


def test_jobs_ran_the_venvs_snakemake(slurm_run):
    """The job logs (kept by the test profile) show which snakemake ran inside SLURM."""
    import snakemake

    main = Path(snakemake.__file__).resolve().parent / "__main__.py"
    run = slurm_run
    logs = sorted((run.workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    jobs = _slurm_jobs(run)
    assert {int(p.stem) for p in logs} >= set(jobs), f"missing job logs: {logs}"
    for path in logs:
        text = path.read_text(errors="replace")
        assert f"Command: {main}" in text, f"{path} does not show the venv's snakemake ({main})"


def test_submissions_are_byte_identical(slurm_run, local_run):
    assert slurm_run.returncode == 0, f"SLURM run failed; last lines:\n{slurm_run.tail()}"
    local = (local_run / TARGET).read_bytes()
    slurm = (slurm_run.workdir / TARGET).read_bytes()
    assert local.startswith(b"img,rle_mask"), local[:100]
    assert local == slurm, (
        f"the SLURM run's submission ({slurm_run.workdir / TARGET}) differs from the local run's "
        f"({local_run / TARGET}); if src/carmask was edited between the two runs, run the test again"
    )
