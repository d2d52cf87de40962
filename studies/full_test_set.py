"""The whole Kaggle test set through the real workflow: 100,064 photos to a validated submission.

Builds a Kaggle-layout folder whose ``test/`` holds Kaggle's real 100,064
test names (from the real ``sample_submission.csv``), each a link to a real
photo of ``../shared/data`` (the 1,280 photos of the 80 cars and the real
test photo, cycled), and whose ``train/`` is the 16-car real sample. Then runs
the real ``snakemake`` to ``results/submission.csv`` with the default model
(config.yaml, or the ``--configfile`` given) in a fresh copy of the
workflow, and reports: wall time of the whole run and per stage (the sum of
its jobs, from each rule's ``benchmark:`` file), images/s of predict and
encode, peak memory per job, disk used by predictions and RLE shards, and
whether the submission validates (every name of sample_submission.csv once,
in order, every RLE inside 1918x1280).

Links are symbolic: the photos stay read-only where they are (hard links
would change their link counts), and the page cache holds the 1,281 real
files, so decoding costs what it would on 100,064 distinct files of that
size on a fast disk.

    python studies/full_test_set.py                      # this machine (make bench-full)
    python studies/full_test_set.py --synthetic --configfile config.yaml studies/gpu.yaml
                                                         # a GPU machine without ../shared (make bench-gpu)

Not part of ``make test``: it takes about as long as the whole test set
takes (docs/performance.md). Without
``../shared`` it skips with the reason, unless ``--synthetic`` links the test
names to full-size demo photos instead (speed only; the masks mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from _common import ROOT, copy_workflow, header, job_benchmarks

from carmask.demo.dataset import generate  # noqa: E402
from carmask.stages.submission import read_submission, validate_submission  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SAMPLE = SHARED / "carvana-sample"
EIGHTY = SHARED / "carvana-80"
STAGES = ["manifest_train", "manifest_test", "split", "train", "predict", "encode", "merge"]


def sources(synthetic: Path | None) -> tuple[Path, list[Path], Path]:
    """(train folder, photos to cycle through test/, sample_submission.csv)."""
    if synthetic is not None:
        photos = sorted((synthetic / "test").glob("*.jpg")) + sorted((synthetic / "train").glob("*.jpg"))
        return synthetic, photos, SAMPLE / "sample_submission.csv" if SAMPLE.is_dir() else synthetic / "kaggle_names.csv"
    photos = sorted((EIGHTY / "train").glob("*.jpg")) + sorted((SAMPLE / "test").glob("*.jpg"))
    return SAMPLE, photos, SAMPLE / "sample_submission.csv"


def kaggle_names(n: int = 100_064) -> list[str]:
    """Kaggle-shaped test names, for --synthetic without the real sample_submission.csv."""
    return [f"{i // 16:012x}_{i % 16 + 1:02d}.jpg" for i in range(n)]


def build_folder(dest: Path, train_from: Path, photos: list[Path], sample_submission: Path, limit: int = 0) -> int:
    """Kaggle's layout at ``dest``: train/ and train_masks/ linked whole, test/ cycled over ``photos``."""
    names = pd.read_csv(sample_submission)["img"].tolist()
    if limit:
        names = names[:limit]
    done = dest / ".complete"
    stamp = f"{len(names)} test links over {len(photos)} photos from {photos[0].parent}; train from {train_from}\n"
    if done.is_file() and done.read_text() == stamp:
        return len(names)
    if dest.exists():
        shutil.rmtree(dest)
    for sub in ("train", "train_masks"):
        (dest / sub).mkdir(parents=True)
        for path in sorted((train_from / sub).iterdir()):
            os.symlink(path.resolve(), dest / sub / path.name)
    (dest / "test").mkdir()
    for i, name in enumerate(names):
        os.symlink(photos[i % len(photos)].resolve(), dest / "test" / name)
    pd.DataFrame({"img": names, "rle_mask": "1 1"}).to_csv(dest / "sample_submission.csv", index=False)
    done.write_text(stamp)
    return len(names)


def run_workflow(work: Path, data: Path, configfiles: list[str], cores: int, set_threads: list[str]) -> float:
    """A fresh copy of the workflow in ``work``, run to results/submission.csv; returns wall seconds."""
    if work.exists():
        shutil.rmtree(work)
    copy_workflow(work)
    for extra in configfiles:  # config files given by path outside the workflow's own
        if not (work / extra).exists():
            shutil.copy2(extra, work / Path(extra).name)
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    files = [f if (work / f).exists() else Path(f).name for f in configfiles]
    cmd = [snakemake, "--cores", str(cores), "results/submission.csv", "--configfile", *files, "--config", f"data_dir={data}"]
    if set_threads:
        cmd += ["--set-threads", *set_threads]
    print("running:", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with open(work / "snakemake.out", "w") as out:
        proc = subprocess.run(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (work / "snakemake.out").read_text()[-3000:]
        raise SystemExit(f"snakemake failed ({proc.returncode}) after {wall:.0f} s:\n{tail}")
    return wall


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def report(work: Path, wall: float, n_test: int) -> dict:
    jobs = job_benchmarks(work)
    results = work / "results"
    model = next(p.name for p in (results / "predictions").iterdir())
    timings = [json.loads(p.read_text()) for p in sorted((results / "predictions" / model / "test").glob("*.timing.json"))]
    test_predict = [j for j in jobs["predict"] if "/test/" in j["path"]]
    test_encode = [j for j in jobs["encode"] if "/test/" in j["path"]]
    manifest = pd.read_parquet(results / "manifest" / "test.parquet", columns=["img", "height", "width"])
    start = time.perf_counter()
    validate_submission(read_submission(results / "submission.csv"), manifest, source="results/submission.csv")
    expected = pd.read_csv(work / "data_names.csv")["img"].tolist()
    in_order = read_submission(results / "submission.csv")["img"].tolist() == expected
    # The test-set part as a user waits for it: from the trained model to the
    # merged CSV (predict, encode, merge; the few validation photos' jobs run
    # in the same window), plus the test manifest's job time, which runs
    # before (an upper bound when it shared the cores with the train manifest).
    trained = max((results / "models" / model / name).stat().st_mtime for name in ("model.keras", "training.json", "history.csv"))
    after_training = (results / "submission.csv").stat().st_mtime - trained
    out = {
        "model": model,
        "test_images": n_test,
        "wall_s": round(wall, 1),
        "after_training_wall_s": round(after_training, 1),
        "test_part_wall_s": round(after_training + sum(j["s"] for j in jobs["manifest_test"]), 1),
        "stages": {rule: {"jobs": len(jobs[rule]), "sum_s": round(sum(j["s"] for j in jobs[rule]), 1),
                          "max_rss_mb": round(max(j["max_rss_mb"] for j in jobs[rule]), 0)} for rule in STAGES if jobs.get(rule)},
        "predict_images_per_s_wall": round(n_test / sum(j["s"] for j in test_predict), 1),
        "predict_images_per_s_jobs": round(sum(t["images_per_s"] for t in timings) / len(timings), 1),
        "predict_settings": {k: timings[0][k] for k in ("precision", "batch_size", "tta", "threads")},
        "encode_masks_per_s_per_job": round(n_test / sum(j["s"] for j in test_encode), 1),
        "predictions_mb": round(disk_mb(results / "predictions" / model / "test"), 1),
        "rle_mb": round(disk_mb(results / "rle" / model / "test"), 1),
        "submission_mb": round((results / "submission.csv").stat().st_size / 2**20, 1),
        "submission_valid": True,
        "submission_in_sample_order": in_order,
        "validate_s": round(time.perf_counter() - start, 1),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/carmask-bench-full"), help="data folder and workflow copy go here")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"], help="config files, as snakemake's --configfile")
    parser.add_argument("--synthetic", action="store_true", help="link the test names to demo photos (no ../shared needed)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test names (a quick trial of the benchmark)")
    parser.add_argument("--set-threads", nargs="*", default=[], metavar="RULE=N", help="as snakemake's --set-threads, e.g. predict=2")
    args = parser.parse_args()

    header("the whole Kaggle test set through the workflow")
    synthetic = None
    if args.synthetic:
        synthetic = args.work / "demo"
        if not (synthetic / "sample_submission.csv").is_file():
            generate(synthetic, n_train_cars=8, n_test_cars=2, views=16, seed=0)
        if not SAMPLE.is_dir():
            pd.DataFrame({"img": kaggle_names()}).to_csv(synthetic / "kaggle_names.csv", index=False)
    elif not (EIGHTY / "train").is_dir() or not (SAMPLE / "train_masks").is_dir():
        print(f"skipped: the real photos are not at {SHARED} (carvana-sample and carvana-80); --synthetic runs on demo photos")
        return
    train_from, photos, names = sources(synthetic)
    data = args.work / "kaggle"
    start = time.perf_counter()
    n_test = build_folder(data, train_from, photos, names, args.limit)
    print(f"data: {data} ({n_test:,} test links over {len(photos):,} {'demo' if synthetic else 'real'} photos; "
          f"train: {train_from}); built in {time.perf_counter() - start:.0f} s", flush=True)
    work = args.work / "workflow"
    wall = run_workflow(work, data, args.configfile, args.cores, args.set_threads)
    shutil.copy2(data / "sample_submission.csv", work / "data_names.csv")
    result = report(work, wall, n_test)
    result["configfiles"] = args.configfile
    result["cores"] = args.cores
    result["set_threads"] = args.set_threads
    print(json.dumps(result, indent=2))
    test_s = sum(result["stages"][r]["sum_s"] for r in ("predict", "encode", "merge") if r in result["stages"])
    print(f"whole run {wall / 60:.1f} min for {n_test:,} test photos (incl. training the model); "
          f"test-set part {result['test_part_wall_s'] / 60:.1f} min (test manifest, then from the trained model to the CSV); "
          f"predict {result['predict_images_per_s_wall']} images/s per job wall time, "
          f"encode {result['encode_masks_per_s_per_job']} masks/s per job; "
          f"test-set jobs {test_s / 60:.1f} min of job time")
    (args.work / "bench-full.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
