"""Killed runs resume, and the same config gives the same bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ..snakemake_runs import SNAKEMAKE, copy_workflow, planned_jobs
from .conftest import snakemake

pytestmark = pytest.mark.e2e


def test_kill_mid_stage_then_resume_gives_identical_results(finished_run, tmp_path):
    work = copy_workflow(tmp_path / "w")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        # predict jobs take one thread each; at two threads they run one at a time, so the
        # tiny run cannot finish between the first shard appearing and the kill
        [SNAKEMAKE, "--cores", "2", "--set-threads", "predict=2", "--configfile", "tests/e2e/tiny.yaml"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    predictions = work / "results/predictions/unet/test"
    deadline = time.monotonic() + 600
    try:
        # Kill hard (like a preempted node) as soon as the first test shard exists.
        while not list(predictions.glob("shard-*.parquet")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no prediction shard within 10 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (work / "results/submission.csv").exists()
    for path in (work / "results").rglob("*.parquet"):
        pq.ParquetFile(path).metadata  # every file with a final name is complete

    snakemake(work, "--unlock")
    left = planned_jobs(snakemake(work, "-n", "--rerun-incomplete"))
    assert not {"train", "manifest_train", "manifest_test"} & set(left)  # finished stages are kept
    snakemake(work, "--rerun-incomplete")

    for rel in ["results/split/train.parquet", "results/split/val.parquet", "results/submission.csv"]:
        assert (work / rel).read_bytes() == (finished_run / rel).read_bytes(), f"{rel} differs between runs"
    assert not list((work / "results").rglob(".tmp-*"))


def test_same_seed_same_weights_on_cpu(finished_run, tmp_path):
    """Training twice from the same split and seed gives identical weights."""
    import keras
    import numpy as np

    work = copy_workflow(tmp_path / "w")
    for rel in ["results/demo", "results/manifest", "results/split"]:
        src = finished_run / rel
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    snakemake(work, "results/models/unet/model.keras")
    a = keras.models.load_model(finished_run / "results/models/unet/model.keras", compile=False)
    b = keras.models.load_model(work / "results/models/unet/model.keras", compile=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
