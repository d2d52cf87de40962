"""Workflow planning at Kaggle scale: snakemake dry run and manifest scan on 100,064 test photos.

Builds, in a temporary folder, a Kaggle-layout data folder whose ``test/``
holds 100,064 hard links to the demo's test photos, named as in the real
``sample_submission.csv`` when ``../shared/data/carvana-sample`` is there
(else synthesized ``<12 hex>_<NN>.jpg`` names, 6,254 cars x 16 views), with a
matching ``sample_submission.csv``, and ``train/`` + ``train_masks/`` linked
from the demo. A copy of the workflow (``_common.copy_workflow`` with
``profiles=True``: what a user's checkout runs, the default profile included) then plans
``results/submission.csv`` with ``snakemake -n``; planning includes the
fingerprint of the test side's 100,064 files (``carmask.planning.tracking``).

Measures:

- the dry run's wall time (target <= 15 s) and its planned jobs. Baseline in
  the same run: the same dry run on a folder with 48 test photos. The DAG has
  one predict and one encode job per shard (``inference.shards``, 16 by
  default), not per image, so the two should plan the same jobs in about the
  same time; a third dry run with twice the shards shows what the DAG does
  grow with;
- the manifest stage alone on the 100,064-photo folder
  (``carmask.stages.manifest.build_manifest(folder, threads=2)``), the one step that
  touches every file (it reads each JPEG header and the file's last bytes).
  The links share a few photos, so the page cache is warm: this is the CPU
  cost of the scan, a lower bound for a cold disk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from _common import REAL, ROOT, OtherLoad, copy_workflow, demo_folder, header, wait_for_idle

from carmask.stages.kaggle_upload import parse_dry_run

N_CARS, VIEWS = 6_254, 16
TARGET_S = 15.0
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """A dry run's jobs as {rule: count}, read as ``make submit`` reads them."""
    return dict(Counter(job.rule for job in parse_dry_run(proc.stdout + proc.stderr)))


def test_names() -> tuple[list[str], str]:
    sample = REAL / "sample_submission.csv"
    if sample.is_file():
        return pd.read_csv(sample, usecols=["img"])["img"].tolist(), f"names from {sample}"
    rng = np.random.default_rng(0)
    cars = sorted({f"{v:012x}" for v in rng.integers(0, 16**12, size=N_CARS * 2, dtype=np.int64)})[:N_CARS]
    return [f"{car}_{view:02d}.jpg" for car in cars for view in range(1, VIEWS + 1)], "synthesized names"


def make_folder(folder: Path, names: list[str], demo: Path) -> None:
    """A Kaggle-layout folder: test/ as hard links to the demo's test photos, train from the demo."""
    for sub in ("train", "train_masks"):
        (folder / sub).mkdir(parents=True)
        for src in sorted((demo / sub).iterdir()):
            os.link(src, folder / sub / src.name)
    photos = sorted((demo / "test").glob("*.jpg"))
    test = folder / "test"
    test.mkdir()
    for i, name in enumerate(names):
        os.link(photos[i % len(photos)], test / name)
    pd.DataFrame({"img": names, "rle_mask": "1 1"}).to_csv(folder / "sample_submission.csv", index=False)


def dry_run(wf: Path, folder: Path, extra_configfile: Path | None = None) -> tuple[float, dict[str, int]]:
    """Wall time of one `snakemake -n results/submission.csv` and its job counts per rule."""
    cmd = [str(SNAKEMAKE), "-n", "results/submission.csv"]
    if extra_configfile is not None:
        cmd += ["--configfile", "config.yaml", str(extra_configfile)]
    cmd += ["--config", f"data_dir={folder}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=wf, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    counts = planned_jobs(proc)
    return elapsed, counts


def timed_dry_runs(wf: Path, folder: Path, repeat: int, extra: Path | None = None) -> tuple[list[float], dict[str, int]]:
    times, counts = [], {}
    for _ in range(repeat):
        t, counts = dry_run(wf, folder, extra)
        times.append(t)
    return times, counts


def describe(counts: dict[str, int]) -> str:
    keys = ["predict", "encode", "train", "manifest_train", "manifest_test"]
    return f"{sum(counts.values())} jobs (" + ", ".join(f"{k} {counts.get(k, 0)}" for k in keys) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="dry runs per case (best is reported)")
    parser.add_argument("--no-manifest", action="store_true", help="skip timing the manifest scan")
    args = parser.parse_args()

    header("workflow DAG and manifest scan at Kaggle scale")
    demo = demo_folder()
    names, origin = test_names()
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    shards = int(cfg["inference"]["shards"])
    # Hard links need the demo's filesystem.
    base = Path(tempfile.gettempdir())
    if base.stat().st_dev != demo.stat().st_dev:
        base = ROOT / "results"
    with tempfile.TemporaryDirectory(prefix="bench-dag-", dir=base) as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        make_folder(tmp / "kaggle", names, demo)
        print(f"made {len(names):,} test links ({origin}) in {time.perf_counter() - start:.1f} s")
        make_folder(tmp / "small", names[:48], demo)
        wf = tmp / "wf"
        copy_workflow(wf, profiles=True)
        double = wf / "double-shards.yaml"
        double.write_text(yaml.safe_dump({"inference": dict(cfg["inference"], shards=2 * shards)}))

        wait_for_idle()
        with OtherLoad() as load:
            dry_run(wf, tmp / "small")  # first run of a fresh workflow copy: creates .snakemake/, not timed
            small_t, small_c = timed_dry_runs(wf, tmp / "small", args.repeat)
            big_t, big_c = timed_dry_runs(wf, tmp / "kaggle", args.repeat)
            dbl_t, dbl_c = timed_dry_runs(wf, tmp / "kaggle", args.repeat, double)
            fmt = lambda ts: ", ".join(f"{t:.1f}" for t in ts)  # noqa: E731
            print(f"snakemake -n results/submission.csv (best of {args.repeat}; all runs in s):")
            print(f"  baseline, 48 test photos, {shards} shards:  {min(small_t):5.1f} s [{fmt(small_t)}]  {describe(small_c)}")
            verdict = "ok" if min(big_t) <= TARGET_S else f"OVER by {min(big_t) - TARGET_S:.1f} s"
            print(f"  {len(names):,} test photos, {shards} shards: {min(big_t):5.1f} s [{fmt(big_t)}]  {describe(big_c)}"
                  f"  [target <= {TARGET_S:.0f} s: {verdict}]  {min(big_t) / min(small_t):.2f}x baseline")
            print(f"  {len(names):,} test photos, {2 * shards} shards: {min(dbl_t):5.1f} s [{fmt(dbl_t)}]  {describe(dbl_c)}"
                  f"  {min(dbl_t) / min(small_t):.2f}x baseline")
            same = big_c == small_c
            print(f"  jobs planned for {len(names):,} photos vs 48: {'identical' if same else 'DIFFERENT'}; "
                  f"doubling shards adds {sum(dbl_c.values()) - sum(big_c.values())} jobs "
                  f"(predict and encode: one per test shard + one for the validation split)")

            if not args.no_manifest:
                from carmask.stages.manifest import build_manifest

                start = time.perf_counter()
                train, test = build_manifest(tmp / "kaggle", threads=2)
                elapsed = time.perf_counter() - start
                n = len(train) + len(test)
                assert len(test) == len(names) and test["img"].tolist() == names
                print(f"manifest scan (build_manifest, threads=2): {len(test):,} test + {len(train)} train photos "
                      f"(+ {len(train)} masks) in {elapsed:.1f} s = {n / elapsed:,.0f} images/s (warm page cache)")
        print(load.line())


if __name__ == "__main__":
    main()
