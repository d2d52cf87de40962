"""`make submit`: validate results/submission.csv.gz, then the official kaggle CLI (a stand-in here)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from carmask.cli import main
from carmask.files import write_parquet
from carmask.submit import KAGGLE_TEST_IMAGES, SubmitError, submit

ROOT = Path(__file__).resolve().parents[1]
MODEL = "mobilenetv2_pix2pix_tuned"
STAND_IN = """#!/bin/sh
# A stand-in for the kaggle CLI: records its arguments, one per line.
printf '%s\\n' "$@" > "$KAGGLE_ARGS_FILE"
exit "${KAGGLE_EXIT:-0}"
"""


def kaggle_run(dest: Path, n: int = KAGGLE_TEST_IMAGES) -> Path:
    """A workflow directory after a run on Kaggle-sized test data: config, manifest, metrics, submission."""
    (dest / "workflow").mkdir(parents=True)
    shutil.copytree(ROOT / "workflow" / "schemas", dest / "workflow" / "schemas")
    shutil.copy(ROOT / "config.yaml", dest / "config.yaml")
    names = [f"{i // 16:012x}_{i % 16 + 1:02d}.jpg" for i in range(n)]
    write_parquet(pd.DataFrame({"img": names, "height": 1280, "width": 1918}), dest / "results/manifest/test.parquet")
    masks = ["1 10 1919 10" if i % 2 else "" for i in range(n)]
    with gzip.open(dest / "results/submission.csv.gz", "wt") as f:
        pd.DataFrame({"img": names, "rle_mask": masks}).to_csv(f, index=False)
    (dest / "results/models" / MODEL).mkdir(parents=True)
    (dest / "results/models" / MODEL / "metrics.json").write_text(json.dumps({"val_dice": 0.98765}))
    return dest


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


def test_a_valid_submission_goes_to_the_kaggle_cli_with_the_model_and_its_dice(finished, kaggle_cli):
    message = submit([str(finished / "config.yaml")], finished)
    assert message == f"carmask {MODEL}: validation Dice 0.9877"
    assert kaggle_cli.read_text().splitlines() == [
        "competitions", "submit", "-c", "carvana-image-masking-challenge",
        "-f", str(finished / "results/submission.csv.gz"), "-m", message,
    ]


def test_make_submit_runs_the_same_command(finished, kaggle_cli, tmp_path):
    # the Makefile's recipe, as a newcomer's shell runs it (the carmask entry point)
    carmask = Path(sys.executable).with_name("carmask")
    proc = subprocess.run([str(carmask), "submit", "--configfile", "config.yaml"], cwd=finished, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{KAGGLE_TEST_IMAGES:,} valid masks" in proc.stdout
    assert kaggle_cli.read_text().splitlines()[:4] == ["competitions", "submit", "-c", "carvana-image-masking-challenge"]
    assert "carmask submit --configfile config.yaml $(CONFIGS)" in (ROOT / "Makefile").read_text()


def test_message_template_and_competition_come_from_the_config(finished, kaggle_cli, tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("submit:\n  competition: my-copy\n  message: 'dice={val_dice:.2f} {model}'\n")
    submit([str(finished / "config.yaml"), str(extra)], finished)
    args = kaggle_cli.read_text().splitlines()
    assert args[3] == "my-copy" and args[-1] == f"dice=0.99 {MODEL}"


def test_without_the_kaggle_cli_one_clear_error(finished, kaggle_cli, monkeypatch, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["submit", "--configfile", str(finished / "config.yaml"), "--directory", str(finished)]) == 2
    assert "`kaggle` command is not on PATH: `pip install kaggle`" in capsys.readouterr().err
    assert not kaggle_cli.exists()


def test_without_credentials_one_clear_error(finished, kaggle_cli, monkeypatch, tmp_path):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SubmitError, match="no Kaggle credentials.*access_token"):
        submit([str(finished / "config.yaml")], finished)
    assert not kaggle_cli.exists()
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


def test_a_partial_test_set_is_refused(tmp_path, kaggle_cli):
    run = kaggle_run(tmp_path / "run", n=48)
    with pytest.raises(SubmitError, match="covers 48 test photos; Kaggle scores all 100,064"):
        submit([str(run / "config.yaml")], run)
    assert not kaggle_cli.exists()


def test_a_bad_mask_is_named_and_nothing_is_sent(tmp_path, kaggle_cli):
    run = kaggle_run(tmp_path / "run")
    path = run / "results/submission.csv.gz"
    sub = pd.read_csv(path, dtype=str, keep_default_na=False)
    sub.loc[7, "rle_mask"] = "5 3 2 1"  # runs out of order
    with gzip.open(path, "wt") as f:
        sub.to_csv(f, index=False)
    with pytest.raises(SubmitError, match=f"bad RLE.*{sub.loc[7, 'img']}"):
        submit([str(run / "config.yaml")], run)
    assert not kaggle_cli.exists()


def test_missing_submission_or_score_say_what_to_run(tmp_path, kaggle_cli):
    run = kaggle_run(tmp_path / "run", n=16)
    (run / "results/submission.csv.gz").unlink()
    with pytest.raises(SubmitError, match="submission.csv.gz not found: build it with `snakemake"):
        submit([str(run / "config.yaml")], run)
    (run / "results/models" / MODEL / "metrics.json").unlink()
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


def test_a_failing_kaggle_cli_is_reported(finished, kaggle_cli, monkeypatch):
    monkeypatch.setenv("KAGGLE_EXIT", "1")
    with pytest.raises(SubmitError, match="failed with exit status 1"):
        submit([str(finished / "config.yaml")], finished)
