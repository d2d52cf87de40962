"""Hand the finished submission to Kaggle's own CLI, after checking it.

``make submit`` (``carmask submit``) is the last step of a Kaggle run: it
validates ``results/submission.csv.gz`` against the test manifest the
workflow built (every test photo once, every RLE inside its photo), refuses a
partial test set (Kaggle scores all 100,064 photos), and runs
``kaggle competitions submit -c <competition> -f <file> -m <message>``. The
message comes from the config's ``submit.message`` template, filled with the
submitted model's name and validation Dice, so the leaderboard entry says
what it is. Without the ``kaggle`` executable or its credentials it stops
with one message that says how to get them, before reading anything large.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from carmask.submission import SubmissionError, read_choice, read_submission, validate_submission

#: Test photos in Kaggle's sample_submission.csv: what a leaderboard entry must cover.
KAGGLE_TEST_IMAGES = 100_064
SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


class SubmitError(RuntimeError):
    """The submission cannot be handed to Kaggle; the message says why and what to do."""


def load_config(paths: Sequence[str | os.PathLike[str]], workdir: Path) -> dict:
    """Config files layered like ``snakemake --configfile a b`` and completed by the schema.

    Paths are relative to ``workdir``, like the run's own ``--configfile``.
    """
    import yaml
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import update_config, validate

    config: dict = {}
    for path in paths:
        full = workdir / path
        if not full.is_file():
            raise SubmitError(f"config file {full} not found (give the files the run used, after config.yaml)")
        update_config(config, yaml.safe_load(full.read_text()) or {})
    try:
        validate(config, str(workdir / SCHEMA))
    except WorkflowError as err:
        raise SubmitError(f"the config files {list(map(str, paths))} are not valid: {err}") from err
    return config


def kaggle_credentials() -> str | None:
    """Where the kaggle CLI will find credentials, or None when it will not.

    The CLI reads an API token (``KAGGLE_API_TOKEN``, or ``access_token``)
    or a legacy key (``KAGGLE_USERNAME`` and ``KAGGLE_KEY``, or
    ``kaggle.json``); the files live in ``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``.
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    for name in ("access_token", "kaggle.json"):
        if (folder / name).is_file():
            return str(folder / name)
    return None


def submitted_model(config: dict, workdir: Path) -> str:
    """The model whose masks are in the submission (reads the choice for ``best``)."""
    name = config["submission_model"]
    if name == "best":
        choice = workdir / "results" / "metrics" / "best_model.txt"
        if not choice.is_file():
            raise SubmitError(f"{choice} not found: run the workflow to results/submission.csv.gz first")
        name = read_choice(choice)
    return name


def submission_message(config: dict, workdir: Path) -> str:
    """``submit.message`` filled with the model's name and validation Dice."""
    model = submitted_model(config, workdir)
    metrics = workdir / "results" / "models" / model / "metrics.json"
    if not metrics.is_file():
        raise SubmitError(f"{metrics} not found: the submitted model has no validation score yet "
                          "(run the workflow's default target, which evaluates it)")
    val_dice = json.loads(metrics.read_text())["val_dice"]
    try:
        return config["submit"]["message"].format(model=model, val_dice=val_dice)
    except (KeyError, IndexError, ValueError) as err:
        raise SubmitError(f"submit.message {config['submit']['message']!r} cannot be filled: {err!r} "
                          "(it may use {model} and {val_dice})") from err


def check_submission(path: Path, manifest: Path, config_paths: Sequence[str]) -> int:
    """Validate the file against the test manifest; return its row count."""
    if not path.is_file():
        raise SubmitError(f"{path} not found: build it with `snakemake --cores 8 results/submission.csv.gz "
                          f"--configfile {' '.join(map(str, config_paths))}` "
                          "(inference.gzip: true also makes it part of the default target)")
    if not manifest.is_file():
        raise SubmitError(f"{manifest} not found: {path} was not made by this workflow's run here")
    expected = pd.read_parquet(manifest, columns=["img", "height", "width"])
    if len(expected) != KAGGLE_TEST_IMAGES:
        raise SubmitError(f"{path} covers {len(expected):,} test photos; Kaggle scores all {KAGGLE_TEST_IMAGES:,} "
                          "(this run used a partial or non-Kaggle test set: the demo, or manifest.partial_test)")
    try:
        validate_submission(read_submission(path), expected, source=str(path))
    except SubmissionError as err:
        raise SubmitError(str(err)) from err
    return len(expected)


def submit(config_paths: Sequence[str], workdir: str | os.PathLike[str] = ".", submission: str | None = None) -> str:
    """Validate the submission and run ``kaggle competitions submit``; return the message sent."""
    workdir = Path(workdir)
    config = load_config(config_paths, workdir)
    kaggle = shutil.which("kaggle")
    if kaggle is None:
        raise SubmitError("the `kaggle` command is not on PATH: `pip install kaggle` (the official Kaggle CLI), "
                          "then put your API token in ~/.kaggle/access_token (kaggle.com > Settings > API)")
    if kaggle_credentials() is None:
        raise SubmitError("no Kaggle credentials: create an API token (kaggle.com > Settings > API) and put it in "
                          "~/.kaggle/access_token or $KAGGLE_API_TOKEN (a legacy key: ~/.kaggle/kaggle.json, or "
                          "KAGGLE_USERNAME and KAGGLE_KEY); $KAGGLE_CONFIG_DIR replaces ~/.kaggle")
    path = workdir / (submission or "results/submission.csv.gz")
    message = submission_message(config, workdir)
    rows = check_submission(path, workdir / "results" / "manifest" / "test.parquet", config_paths)
    competition = config["submit"]["competition"]
    print(f"{path}: {rows:,} valid masks; submitting to {competition}: {message!r}", flush=True)
    proc = subprocess.run([kaggle, "competitions", "submit", "-c", competition, "-f", str(path), "-m", message])
    if proc.returncode != 0:
        raise SubmitError(f"`kaggle competitions submit` failed with exit status {proc.returncode} (its output is above)")
    return message
