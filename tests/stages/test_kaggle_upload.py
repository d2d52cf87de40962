"""`make submit`: check results/submission.csv.gz is the current run's and valid, then the official kaggle CLI.

The kaggle CLI is a stand-in. Snakemake's dry run is real where a test says so
(a one-rule stand-in workflow, or a copy of the real one); elsewhere it is
stubbed to "nothing to be done" (the `dry_run` fixture), which keeps each
check's test to the point and the suite from starting snakemake a dozen times.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import carmask.stages.kaggle_upload as submit_module
from carmask.cli import main
from carmask.files import write_parquet
from carmask.stages.submission import gzip_file
from carmask.stages.kaggle_upload import KAGGLE_TEST_IMAGES, PendingJob, SubmitError, describe_jobs, parse_dry_run, pending_jobs, submit

from ..snakemake_runs import copy_workflow

ROOT = Path(__file__).resolve().parents[2]
MODEL = "unet"  # config.yaml's submission model
STAND_IN = """#!/bin/sh
# A stand-in for the kaggle CLI: records its arguments, one per line.
printf '%s\\n' "$@" > "$KAGGLE_ARGS_FILE"
exit "${KAGGLE_EXIT:-0}"
"""


# The run's last rule as the whole workflow: a real dry run in a second that
# finds nothing to do while the .gz is newer than the CSV.
STAND_IN_WORKFLOW = """rule compress_submission:
    input:
        "results/submission.csv",
    output:
        "results/submission.csv.gz",
    shell:
        "gzip -n < {input} > {output}"
"""


def write_submission(dest: Path, sub: pd.DataFrame) -> None:
    """results/submission.csv and its gzip, as merge and compress_submission write them (the .gz newer)."""
    csv = dest / "results/submission.csv"
    sub.to_csv(csv, index=False)
    gzip_file(str(csv), str(dest / "results/submission.csv.gz"))
    later = csv.stat().st_mtime_ns + 1_000_000_000
    os.utime(dest / "results/submission.csv.gz", ns=(later, later))


def write_results(dest: Path, n: int = KAGGLE_TEST_IMAGES) -> Path:
    """A run's results on Kaggle-sized test data: manifest, submission (.csv and .gz), the model's metrics."""
    names = [f"{i // 16:012x}_{i % 16 + 1:02d}.jpg" for i in range(n)]
    write_parquet(pd.DataFrame({"img": names, "height": 1280, "width": 1918}), dest / "results/manifest/test.parquet")
    masks = ["1 10 1919 10" if i % 2 else "" for i in range(n)]
    write_submission(dest, pd.DataFrame({"img": names, "rle_mask": masks}))
    (dest / "results/models" / MODEL).mkdir(parents=True)
    (dest / "results/metrics").mkdir(parents=True, exist_ok=True)
    (dest / "results/metrics" / f"{MODEL}.json").write_text(json.dumps({"dice_mean": 0.98765}))
    return dest


def kaggle_run(dest: Path, n: int = KAGGLE_TEST_IMAGES) -> Path:
    """A workflow directory after a run on Kaggle-sized test data: config, results, a one-rule stand-in Snakefile."""
    (dest / "workflow").mkdir(parents=True)
    shutil.copytree(ROOT / "workflow" / "schemas", dest / "workflow" / "schemas")
    shutil.copy(ROOT / "config.yaml", dest / "config.yaml")
    (dest / "Snakefile").write_text(STAND_IN_WORKFLOW)
    return write_results(dest, n)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return kaggle_run(tmp_path_factory.mktemp("kaggle-run"))


@pytest.fixture
def kaggle_cli(tmp_path, monkeypatch) -> Path:
    """A `kaggle` on PATH that records its arguments; credentials in the environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "kaggle"
    exe.write_text(STAND_IN)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    args = tmp_path / "kaggle-args.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAGGLE_ARGS_FILE", str(args))
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0123")
    return args


@pytest.fixture
def dry_run(monkeypatch) -> list[tuple[str, list[str], Path]]:
    """Snakemake's dry run stubbed to "nothing to be done"; the calls it got, as (target, config files, workdir)."""
    calls: list[tuple[str, list[str], Path]] = []

    def nothing_to_do(target: str, config_paths, workdir: Path) -> list[PendingJob]:
        calls.append((target, list(config_paths), Path(workdir)))
        return []

    monkeypatch.setattr(submit_module, "pending_jobs", nothing_to_do)
    return calls


def test_a_valid_submission_goes_to_the_kaggle_cli_with_the_model_and_its_dice(finished, kaggle_cli, dry_run):
    message = submit([str(finished / "config.yaml")], finished)
    assert message == f"carmask {MODEL}: validation Dice 0.9877"
    assert dry_run == [("results/submission.csv.gz", [str(finished / "config.yaml")], finished)]
    assert kaggle_cli.read_text().splitlines() == [
        "competitions", "submit", "-c", "carvana-image-masking-challenge",
        "-f", str(finished / "results/submission.csv.gz"), "-m", message,
    ]


def test_make_submit_runs_the_same_command(finished, kaggle_cli, tmp_path):
    # the Makefile's recipe, as a newcomer's shell runs it (the carmask entry point), with the real
    # dry run: the stand-in workflow has nothing left to do
    carmask = Path(sys.executable).with_name("carmask")
    proc = subprocess.run([str(carmask), "submit", "--configfile", "config.yaml"], cwd=finished, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{KAGGLE_TEST_IMAGES:,} valid masks" in proc.stdout
    assert kaggle_cli.read_text().splitlines()[:4] == ["competitions", "submit", "-c", "carvana-image-masking-challenge"]
    assert "carmask submit --configfile config.yaml $(CONFIGS)" in (ROOT / "Makefile").read_text()


def test_message_template_and_competition_come_from_the_config(finished, kaggle_cli, dry_run, tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("submit:\n  competition: my-copy\n  message: 'dice={dice_mean:.2f} {model}'\n")
    submit([str(finished / "config.yaml"), str(extra)], finished)
    args = kaggle_cli.read_text().splitlines()
    assert args[3] == "my-copy" and args[-1] == f"dice=0.99 {MODEL}"


def test_without_the_kaggle_cli_one_clear_error(finished, kaggle_cli, dry_run, monkeypatch, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["submit", "--configfile", str(finished / "config.yaml"), "--directory", str(finished)]) == 2
    assert "`kaggle` command is not on PATH: `pip install kaggle`" in capsys.readouterr().err
    assert not kaggle_cli.exists() and not dry_run  # before the dry run


def test_without_credentials_one_clear_error(finished, kaggle_cli, dry_run, monkeypatch, tmp_path):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SubmitError, match="no Kaggle credentials.*access_token"):
        submit([str(finished / "config.yaml")], finished)
    assert not kaggle_cli.exists() and not dry_run  # before the dry run
    # any one of the CLI's sources is enough: a token file, a legacy key file, the token variable
    (tmp_path / "nowhere").mkdir()
    for name, text in (("access_token", "KGAT_0123"), ("kaggle.json", '{"username": "someone", "key": "0123"}')):
        (tmp_path / "nowhere" / name).write_text(text)
        submit([str(finished / "config.yaml")], finished)
        assert kaggle_cli.exists()
        kaggle_cli.unlink()
        (tmp_path / "nowhere" / name).unlink()
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_0123")
    submit([str(finished / "config.yaml")], finished)
    assert kaggle_cli.exists()


def test_a_partial_test_set_is_refused(tmp_path, kaggle_cli, dry_run):
    run = kaggle_run(tmp_path / "run", n=48)
    with pytest.raises(SubmitError, match="covers 48 test photos; Kaggle scores all 100,064"):
        submit([str(run / "config.yaml")], run)
    assert not kaggle_cli.exists()


def test_a_bad_mask_is_named_and_nothing_is_sent(tmp_path, kaggle_cli, dry_run):
    run = kaggle_run(tmp_path / "run")
    sub = pd.read_csv(run / "results/submission.csv.gz", dtype=str, keep_default_na=False)
    sub.loc[7, "rle_mask"] = "5 3 2 1"  # runs out of order
    write_submission(run, sub)
    with pytest.raises(SubmitError, match=f"bad RLE.*{sub.loc[7, 'img']}"):
        submit([str(run / "config.yaml")], run)
    assert not kaggle_cli.exists()


def test_missing_submission_or_score_say_what_to_run(tmp_path, kaggle_cli):
    run = kaggle_run(tmp_path / "run", n=16)
    (run / "results/submission.csv.gz").unlink()
    with pytest.raises(SubmitError, match="submission.csv.gz not found: build it with `snakemake"):
        submit([str(run / "config.yaml")], run)
    (run / "results/metrics" / f"{MODEL}.json").unlink()
    with pytest.raises(SubmitError, match="no validation score yet"):
        submit([str(run / "config.yaml")], run)


def test_config_mistakes_are_one_clear_error(finished, kaggle_cli, tmp_path):
    with pytest.raises(SubmitError, match="config file .*nope.yaml not found"):
        submit([str(finished / "config.yaml"), "nope.yaml"], finished)
    bad = tmp_path / "bad.yaml"
    bad.write_text("submit:\n  message: '{model} {dice}'\n")
    with pytest.raises(SubmitError, match="cannot be filled.*'dice'"):
        submit([str(finished / "config.yaml"), str(bad)], finished)
    bad.write_text("submit:\n  competition: 7\n")
    with pytest.raises(SubmitError, match="not valid"):
        submit([str(finished / "config.yaml"), str(bad)], finished)
    assert not kaggle_cli.exists()


def test_a_failing_kaggle_cli_is_reported(finished, kaggle_cli, dry_run, monkeypatch):
    monkeypatch.setenv("KAGGLE_EXIT", "1")
    with pytest.raises(SubmitError, match="failed with exit status 1"):
        submit([str(finished / "config.yaml")], finished)


def test_a_gz_that_is_not_the_gzip_of_submission_csv_is_refused(tmp_path, kaggle_cli, monkeypatch):
    run = kaggle_run(tmp_path / "run", n=16)
    gz = run / "results/submission.csv.gz"
    # another run's masks, copied in after this run's CSV: newer, so the real dry run has nothing to do
    # (the message below is the byte comparison's, the check after it)
    other = pd.read_csv(gz, dtype=str, keep_default_na=False)
    other.loc[3, "rle_mask"] = "1 20"
    with gzip.open(gz, "wt") as f:
        other.to_csv(f, index=False)
    os.utime(gz, ns=(run.joinpath("results/submission.csv").stat().st_mtime_ns + 2_000_000_000,) * 2)
    with pytest.raises(SubmitError, match=r"submission.csv.gz is from another run: it does not decompress to "
                                          r".*results/submission.csv byte for byte; delete it and run "
                                          r"`snakemake --cores 8 results/submission.csv.gz --configfile "):
        submit([str(run / "config.yaml")], run)
    assert not kaggle_cli.exists()
    # the same rows in other bytes (CRLF), the right gzip cut short, no gzip at all: refused too
    monkeypatch.setattr(submit_module, "pending_jobs", lambda *args: [])
    csv_bytes = run.joinpath("results/submission.csv").read_bytes()
    for content in (gzip.compress(csv_bytes.replace(b"\n", b"\r\n")), gzip.compress(csv_bytes)[:-12], csv_bytes):
        gz.write_bytes(content)
        with pytest.raises(SubmitError, match="is from another run"):
            submit([str(run / "config.yaml")], run)
    (run / "results/submission.csv").unlink()
    with pytest.raises(SubmitError, match=r"submission.csv not found, so .*submission.csv.gz cannot be the current"):
        submit([str(run / "config.yaml")], run)
    assert not kaggle_cli.exists()


def test_a_submission_the_workflow_would_rebuild_is_refused(tmp_path, kaggle_cli, capsys):
    run = kaggle_run(tmp_path / "run", n=48)  # a partial test set too: staleness is checked first
    later = (run / "results/submission.csv.gz").stat().st_mtime_ns + 1_000_000_000
    os.utime(run / "results/submission.csv", ns=(later, later))  # e.g. merge reran: the CSV is newer than its gzip
    assert main(["submit", "--configfile", "config.yaml", "--directory", str(run)]) == 2
    err = capsys.readouterr().err
    assert "submission.csv.gz is not the current run's submission: with these config files the workflow would " \
           "still run 1 job for results/submission.csv.gz:\n" \
           "  compress_submission: Updated input files: results/submission.csv\n" in err
    assert f"run `snakemake --cores 8 results/submission.csv.gz --configfile config.yaml` in {run} first" in err
    assert not kaggle_cli.exists()


def test_the_real_workflow_plans_a_whole_run_without_results_and_refuses_a_stale_submission(tmp_path, kaggle_cli):
    wf = copy_workflow(tmp_path / "wf")
    # no results at all: the dry run of the real workflow plans the whole demo run (and runs nothing)
    jobs = pending_jobs("results/submission.csv.gz", ["config.yaml"], wf)
    assert Counter(job.rule for job in jobs) == {
        "demo_data": 1, "manifest_test": 1, "manifest_train": 1, "split": 1, "train": 1, "predict": 17,
        "encode": 17, "evaluate": 1, "merge": 1, "compress_submission": 1}
    described = describe_jobs(jobs)
    assert described.startswith("  demo_data: Missing output files: results/demo\n")
    assert "\n  encode (17 jobs): Missing output files; Input files updated by another job\n" in described
    assert described.endswith("\n  compress_submission: Missing output files: results/submission.csv.gz; "
                              "Input files updated by another job: results/submission.csv")
    assert not (wf / "results").exists()
    # a run's submission whose test manifest changed after the merge: refused, with what would run and why
    write_results(wf, n=16)
    later = (wf / "results/submission.csv.gz").stat().st_mtime_ns + 1_000_000_000
    os.utime(wf / "results/manifest/test.parquet", ns=(later, later))
    with pytest.raises(SubmitError) as refused:
        submit(["config.yaml"], wf)
    message = str(refused.value)
    assert message.startswith(f"{wf}/results/submission.csv.gz is not the current run's submission: with these "
                              "config files the workflow would still run 42 jobs for results/submission.csv.gz:\n")
    assert "\n  merge: Input files updated by another job: results/" in message
    assert "\n  compress_submission: Input files updated by another job: results/submission.csv\n" in message
    assert message.endswith(f"run `snakemake --cores 8 results/submission.csv.gz --configfile config.yaml` in {wf} "
                            "first, then submit again")
    assert not kaggle_cli.exists()


# Snakemake 9.27.1's dry run, verbatim but for the jobs left out (`...`).
DRY_RUN_OUTPUT = """\
Building DAG of jobs...
Job stats:
job                    count
-------------------  -------
predict                   17
choose_model               1
merge                      1
total                     19


[Wed Dec  2 12:03:18 2026]
rule predict:
    input: results/models/unet/model.keras, results/manifest/test.parquet
    output: results/predictions/unet/test/shard-0.parquet, results/predictions/unet/test/shard-0.timing.json
    log: logs/predict/unet/test/shard-0.log
    jobid: 12
    reason: Params have changed since last execution
    wildcards: model=unet, subset=test, shard=0
    resources: tmpdir=/tmp, mem_mb=1500, mem=1.5 GB, mem_mib=1431, runtime=60
...
[Wed Dec  2 12:03:18 2026]
rule predict:
    input: results/models/unet/model.keras, results/split/val.parquet
    output: results/predictions/unet/val/shard-0.parquet, results/predictions/unet/val/shard-0.timing.json
    jobid: 30
    reason: Code has changed since last execution; Updated input files: results/models/unet/model.keras
    wildcards: model=unet, subset=val, shard=0
[Wed Dec  2 12:03:18 2026]
localrule choose_model:
    input: results/metrics/unet.json, results/metrics/vgg19_pix2pix.json
    output: results/metrics/best_model.txt
    jobid: 40
    reason: Input files updated by another job: results/metrics/unet.json
    resources: tmpdir=/tmp
[Wed Dec  2 12:03:18 2026]
rule merge:
    input: results/rle/unet/test/shard-0.parquet, results/manifest/test.parquet, results/metrics/best_model.txt
    output: results/submission.csv
    jobid: 1
    reason: Input files updated by another job: results/metrics/best_model.txt
    resources: tmpdir=/tmp
Job stats:
job                    count
-------------------  -------
predict                   17
choose_model               1
merge                      1
total                     19

Reasons:
    (check individual jobs above for details)
    params have changed since last execution:
        predict
This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""


def test_the_dry_run_output_is_read_as_jobs_and_reasons():
    jobs = parse_dry_run(DRY_RUN_OUTPUT)
    assert [job.rule for job in jobs] == ["predict", "predict", "choose_model", "merge"]
    assert jobs[2] == PendingJob("choose_model", "Input files updated by another job: results/metrics/unet.json")
    assert describe_jobs(jobs) == (
        "  predict (2 jobs): Params have changed since last execution; Code has changed since last execution; "
        "Updated input files\n"
        "  choose_model: Input files updated by another job: results/metrics/unet.json\n"
        "  merge: Input files updated by another job: results/metrics/best_model.txt")
    assert parse_dry_run("Building DAG of jobs...\nNothing to be done (all requested files are present and up to "
                         "date).\n") == []
    # output it cannot read is an error, never "nothing to do"
    with pytest.raises(SubmitError, match="neither jobs nor 'Nothing to be done'"):
        parse_dry_run("Building DAG of jobs...\nsomething new\n")


def test_a_failing_dry_run_is_an_error_not_a_pass(tmp_path):
    (tmp_path / "Snakefile").write_text("rule broken:\n    output: 'x'\n    shell: 'touch {output}'\nthis is not python\n")
    (tmp_path / "config.yaml").write_text("a: 1\n")
    with pytest.raises(SubmitError, match=r"(?s)`-m snakemake --dry-run --nocolor results/submission.csv.gz "
                                          r"--configfile config.yaml` failed in .* \(exit status 1\).*output ends:"):
        pending_jobs("results/submission.csv.gz", ["config.yaml"], tmp_path)
