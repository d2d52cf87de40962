"""End to end: the real snakemake on tiny demo data."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from carmask.masks import rle
from carmask.stages.evaluate import score_submission
from carmask.stages.submission import read_submission

from ..snakemake_runs import copy_workflow, planned_jobs
from .conftest import snakemake

pytestmark = pytest.mark.e2e


def override(workdir, text: str) -> str:
    """A config file layered on top of tiny.yaml (nested keys merge)."""
    path = workdir / "override.yaml"
    path.write_text(text)
    return str(path)


def test_submission_is_complete_and_valid(finished_run):
    sub = read_submission(finished_run / "results/submission.csv")
    sample = pd.read_csv(finished_run / "results/demo/sample_submission.csv")
    assert list(sub.columns) == ["img", "rle_mask"]
    assert sub["img"].tolist() == sample["img"].tolist()  # sample_submission order
    test = pd.read_parquet(finished_run / "results/manifest/test.parquet").set_index("img")
    for img, code in zip(sub["img"], sub["rle_mask"]):
        rle.decode(code, (int(test.loc[img, "height"]), int(test.loc[img, "width"])))


def test_every_stage_made_its_outputs(finished_run):
    r = finished_run / "results"
    model = "unet"
    for path in [
        "manifest/train.parquet", "manifest/test.parquet", "split/train.parquet", "split/val.parquet",
        f"models/{model}/model.keras", f"models/{model}/training.json", f"models/{model}/history.csv",
        f"models/{model}/curves.png", f"models/{model}/summary.txt", f"metrics/{model}.json",
        "predictions/{m}/test/shard-0.parquet".format(m=model), f"rle/{model}/test/shard-1.parquet",
        "report/models.csv", f"report/{model}/gallery_best.png", f"report/{model}/dice_per_view.png",
    ]:
        assert (r / path).is_file(), path
    cutouts = sorted((r / "cutouts" / model).glob("*.png"))
    assert cutouts and len(cutouts) == len(list((r / "composites" / model).glob("*.jpg")))
    assert not list(r.rglob(".tmp-*")), "temporary files left behind"
    # results/models/ holds trained models only: the ensemble and the scores live elsewhere
    assert {p.name for p in (r / "models").iterdir()} == {model}
    assert {p.name for p in (r / "models" / model).iterdir()} == {"model.keras", "training.json", "history.csv", "curves.png", "summary.txt", "card.json"}
    for log in ["manifest/train.log", "manifest/test.log", "split.log", f"train/{model}.log", f"predict/{model}/test/shard-0.log", f"encode/{model}/test/shard-0.log", "merge.log"]:
        assert (finished_run / "logs" / log).is_file(), log


def test_evaluate_and_score_agree(finished_run):
    """Two paths, one number: evaluate's Dice equals score's on the same predictions."""
    model = "unet"
    metrics = json.loads((finished_run / f"results/metrics/{model}.json").read_text())
    val = pd.read_parquet(finished_run / "results/split/val.parquet")
    shard = pd.read_parquet(finished_run / f"results/rle/{model}/val/shard-0.parquet")
    sub_path = finished_run / "val_submission.csv"
    shard.to_csv(sub_path, index=False)
    truth = finished_run / "val_masks"
    truth.mkdir(exist_ok=True)
    for path in val["mask_path"]:
        shutil.copy(finished_run / path, truth)  # manifest paths are relative to the workdir
    scored = score_submission(sub_path, truth)
    assert scored["dice_mean"] == metrics["dice_mean"]
    # the predict job's measured speed reaches the metrics, from its timing file
    timing = json.loads((finished_run / f"results/predictions/{model}/val/shard-0.timing.json").read_text())
    assert metrics["predict_images_per_s"] == round(timing["images_per_s"], 2) > 0
    assert scored["per_image"] == metrics["per_image"]
    # the score rule, as a user runs it
    cfg = override(finished_run, f"score: {{submission: {sub_path}, truth: {truth}}}\n")
    snakemake(finished_run, "results/score.json", overrides=(cfg,))
    by_rule = json.loads((finished_run / "results/score.json").read_text())
    assert by_rule["dice_mean"] == metrics["dice_mean"]


def test_second_run_has_nothing_to_do(finished_run):
    assert planned_jobs(snakemake(finished_run, "-n")) == {}


def test_threshold_change_reruns_encode_not_predict(finished_run):
    jobs = planned_jobs(snakemake(finished_run, "-n", overrides=(override(finished_run, "inference: {threshold: 0.6}\n"),)))
    assert jobs.get("encode") == 3 and "merge" in jobs
    assert "predict" not in jobs and "train" not in jobs


def test_model_change_retrains_only_that_model(finished_run):
    jobs = planned_jobs(snakemake(finished_run, "-n", overrides=(override(finished_run, "models: {unet: {learning_rate: 0.002}}\n"),)))
    assert jobs.get("train") == 1 and jobs.get("predict") == 3
    assert not {"manifest_train", "manifest_test", "split", "demo_data"} & set(jobs)


def test_lost_shard_recomputes_only_that_shard(finished_run, tmp_path):
    work = copy_workflow(tmp_path / "w")
    shutil.copytree(finished_run / "results", work / "results")
    shutil.copytree(finished_run / ".snakemake", work / ".snakemake", ignore=shutil.ignore_patterns("locks", "incomplete"))
    assert planned_jobs(snakemake(work, "-n")) == {}
    # As if the run stopped before shard 1 was predicted: its files and everything after are missing.
    for rel in ["predictions/unet/test/shard-1.parquet", "rle/unet/test/shard-1.parquet", "submission.csv"]:
        (work / "results" / rel).unlink()
    jobs = planned_jobs(snakemake(work, "-n"))
    assert jobs == {"predict": 1, "encode": 1, "merge": 1, "cutouts": 1, "all": 1}


def test_tensorflow_notices_stay_in_the_job_logs(finished_run):
    # The terminal shows Snakemake's progress; TensorFlow's start-up notices
    # (written by native code straight to the process's stderr) go to the logs.
    terminal = (finished_run / "snakemake.out").read_text()
    assert "Finished job" in terminal or "steps (100%) done" in terminal
    for notice in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert notice not in terminal
    assert "val_loss" in (finished_run / "logs/train/unet.log").read_text()  # Keras' epoch line went to the log
