"""The workflow stays lint-clean and snakefmt-formatted, and plans every stage.

Lint and dry runs work in a copy of the workflow: tests never read or write
the repository's own results/, logs/ or .snakemake/ (a newcomer's `make run`
leaves them there before `make test`).
"""

import subprocess
import sys
from pathlib import Path

from .snakemake_runs import ROOT, copy_workflow, planned_jobs, run_snakemake

BIN = Path(sys.executable).parent
FOUR = "models_to_run=[mobilenetv2_pix2pix,mobilenetv2_pix2pix_tuned,vgg19_pix2pix,unet]"


def test_snakemake_lint_is_clean(tmp_path):
    proc = run_snakemake(copy_workflow(tmp_path), "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakefmt_check():
    proc = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dry_run_plans_every_stage_and_all_four_models(tmp_path):
    proc = run_snakemake(copy_workflow(tmp_path), "-n", "results/submission.csv", "--config", FOUR, "submission_model=best")
    stats = planned_jobs(proc)
    assert stats["demo_data"] == stats["manifest_train"] == stats["manifest_test"] == stats["split"] == 1
    assert stats["train"] == 4 and stats["evaluate"] == 4
    assert stats["choose_model"] == 1  # 'best' waits for the validation Dice of all four
    # 4 models x (16 test shards + 1 validation shard): with 'best' every model's
    # test set is predicted, so the plan is complete before anything runs
    assert stats["predict"] == 4 * 17 and stats["encode"] == 4 * 17
    assert stats["merge"] == 1


def test_dry_run_of_an_ensemble_with_a_tuned_threshold(tmp_path):
    # The ensemble predicts nothing of its own: its encode jobs read its
    # models' predictions; with 'best' it competes with them; 'auto' tunes
    # a threshold for each of the three.
    layer = tmp_path / "ensemble.yaml"
    layer.write_text("models_to_run: [unet, mobilenetv2_pix2pix_tuned]\nsubmission_model: best\n"
                     "ensemble: {models: [unet, mobilenetv2_pix2pix_tuned], weights: [1, 2]}\n"
                     "inference: {threshold: auto, tta: flip_scale}\n")
    work = copy_workflow(tmp_path / "work")
    stats = planned_jobs(run_snakemake(work, "-n", "--configfile", "config.yaml", str(layer)))
    assert stats["train"] == 2 and stats["predict"] == 2 * 17
    assert stats["encode"] == 3 * 17 and stats["tune_threshold"] == 3 and stats["evaluate"] == 3
    assert stats["choose_model"] == 1 and stats["merge"] == 1
    assert stats["report_model"] == stats["cutouts"] == 3


def test_ensemble_config_mistakes_are_named(tmp_path):
    work = copy_workflow(tmp_path / "work")
    two = "models_to_run: [unet, mobilenetv2_pix2pix_tuned]\n"
    cases = [
        ("submission_model: ensemble\n", "needs models under ensemble.models"),
        ("ensemble: {models: [unet], weights: null}\n", "two or more"),
        ("ensemble: {models: [unet, vgg19_pix2pix], weights: null}\n", "distinct models of models_to_run"),
        ("ensemble: {models: [unet, mobilenetv2_pix2pix_tuned], weights: [1]}\n", "1 weights for 2 models"),
        ("ensemble: {models: [], weights: [1, 2]}\n", "ensemble.weights is set but ensemble.models is empty"),
    ]
    for i, (setting, words) in enumerate(cases):
        layer = tmp_path / f"layer-{i}.yaml"
        layer.write_text(two + setting)
        proc = run_snakemake(work, "-n", "--configfile", "config.yaml", str(layer), check=False)
        assert proc.returncode != 0 and words in proc.stdout + proc.stderr, setting


def test_a_model_name_with_regex_characters_plans_its_own_jobs(tmp_path):
    # Wildcard constraints take model names literally: 'unet+aug' is a name,
    # not "unet, one or more times, then aug".
    layer = tmp_path / "plus.yaml"
    layer.write_text("models_to_run: [unet+aug, unet]\nsubmission_model: unet+aug\n"
                     "models: {unet+aug: {architecture: unet, input_height: 32, input_width: 48, channels: 3, "
                     "encoder_weights: none, freeze_encoder: false, base_filters: 4, loss: bce_dice, epochs: 1, "
                     "batch_size: 4, learning_rate: 0.001, patience: 1, flip_lr: true, flip_ud: false, seed: 1}}\n")
    work = copy_workflow(tmp_path / "work")
    proc = run_snakemake(work, "-n", "results/submission.csv", "--configfile", "config.yaml", str(layer))
    text = proc.stdout + proc.stderr
    assert "results/models/unet+aug/model.keras" in text and "results/rle/unet+aug/test/shard-0.parquet" in text
    assert planned_jobs(proc)["train"] == 1  # only the submission model's chain: unet is not needed


def test_files_named_by_settings_are_inputs_of_the_jobs_that_read_them(tmp_path):
    # An encoder weights file and a background image: replacing one reruns
    # the job that reads it; a missing one stops the run before any job.
    work = copy_workflow(tmp_path / "work")
    weights, background = tmp_path / "encoder.weights.h5", tmp_path / "studio.png"
    layer = tmp_path / "files.yaml"
    only = "models_to_run: [mobilenetv2_pix2pix_tuned]\nsubmission_model: mobilenetv2_pix2pix_tuned\n"
    layer.write_text(only + f"models: {{mobilenetv2_pix2pix_tuned: {{encoder_weights: {weights}}}}}\n"
                     f"cutouts: {{background: {background}}}\n")
    targets = ["results/models/mobilenetv2_pix2pix_tuned/model.keras", "results/cutouts/mobilenetv2_pix2pix_tuned"]
    for target, missing, made in zip(targets, (weights, background), (b"weights", b"png")):
        proc = run_snakemake(work, "-n", target, "--configfile", "config.yaml", str(layer), check=False)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "MissingInputException" in text and str(missing) in text, target
        missing.write_bytes(made)
    text = "".join(run_snakemake(work, "-n", *targets, "--configfile", "config.yaml", str(layer)).stdout)
    train = text.split("rule train:", 1)[1].split("\n\n", 1)[0]
    cutouts = text.split("rule cutouts:", 1)[1].split("\n\n", 1)[0]
    assert str(weights) in train.split("output:")[0] and str(background) in cutouts.split("output:")[0]
    # a colour, imagenet and none name no file
    layer.write_text(only + "models: {mobilenetv2_pix2pix_tuned: {encoder_weights: imagenet}}\ncutouts: {background: '#ffffff'}\n")
    run_snakemake(work, "-n", *targets, "--configfile", "config.yaml", str(layer))
