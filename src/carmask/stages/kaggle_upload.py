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

It sends only the current run's submission: the .gz must be the gzip of
today's ``results/submission.csv`` (byte for byte, so not a leftover from
another run or config), and Snakemake's dry run with the same config files
must have nothing left to do for it (no changed parameter, code, data or
model choice that would rebuild it). Otherwise it says what to run.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from carmask.stages.submission import SubmissionError, read_choice, read_submission, validate_submission

#: Test photos in Kaggle's sample_submission.csv: what a leaderboard entry must cover.
KAGGLE_TEST_IMAGES = 100_064
SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"
SUBMISSION = "results/submission.csv.gz"
CSV = "results/submission.csv"
#: Bytes compared at a time: the CSV is about 700 MB, never held whole.
CHUNK = 1 << 20
#: Seconds the dry run may take: it parses the workflow and stats its files, no TensorFlow.
DRY_RUN_TIMEOUT = 600


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
    """``submit.message`` filled with the model's name and its mean validation Dice."""
    model = submitted_model(config, workdir)
    metrics = workdir / "results" / "metrics" / f"{model}.json"
    if not metrics.is_file():
        raise SubmitError(f"{metrics} not found: the submitted model has no validation score yet "
                          "(run the workflow's default target, which evaluates it)")
    dice_mean = json.loads(metrics.read_text())["dice_mean"]
    try:
        return config["submit"]["message"].format(model=model, dice_mean=dice_mean)
    except (KeyError, IndexError, ValueError) as err:
        raise SubmitError(f"submit.message {config['submit']['message']!r} cannot be filled: {err!r} "
                          "(it may use {model} and {dice_mean})") from err


def build_command(target: str, config_paths: Sequence[str]) -> str:
    """The snakemake command that (re)builds ``target`` with the run's config files, for messages."""
    return shlex.join(["snakemake", "--cores", "8", target, "--configfile", *map(str, config_paths)])


@dataclass(frozen=True)
class PendingJob:
    """One job of a dry run: the rule, and Snakemake's reason to run it."""

    rule: str
    reason: str


_JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n?)*)", re.M)
_REASON = re.compile(r"^\s+reason: (.*)$", re.M)


def parse_dry_run(text: str) -> list[PendingJob]:
    """The jobs a ``snakemake --dry-run`` would run, read from its output.

    Snakemake (9.x) prints one block per job (``rule NAME:`` then indented
    ``input:``, ``output:``, ``reason:`` ... lines) and a ``Job stats`` table,
    or ``Nothing to be done`` when every requested file is current. Output
    with neither is an error, never "nothing to do": a format this cannot
    read must not let a stale submission through.
    """
    jobs = []
    for rule, body in _JOB.findall(text):
        reason = _REASON.search(body)
        jobs.append(PendingJob(rule, reason.group(1).strip() if reason else ""))
    if jobs:
        return jobs
    if "Nothing to be done" in text:
        return []
    raise SubmitError("snakemake's dry run printed neither jobs nor 'Nothing to be done':\n"
                      + textwrap.indent("\n".join(text.strip().splitlines()[-15:]), "  "))


def dry_run_command(target: str, config_paths: Sequence[str]) -> list[str]:
    """``snakemake --dry-run TARGET --configfile ...`` with this interpreter's Snakemake.

    ``python -m snakemake`` with ``sys.executable``: the Snakemake installed
    beside carmask (the workflow imports it), whatever is first on PATH.
    """
    return [sys.executable, "-m", "snakemake", "--dry-run", "--nocolor", target,
            "--configfile", *map(str, config_paths)]


def pending_jobs(target: str, config_paths: Sequence[str], workdir: Path) -> list[PendingJob]:
    """What Snakemake would still run for ``target`` in ``workdir`` with these config files.

    A dry run builds the workflow's DAG with every rerun trigger (file times,
    params, code, the data fingerprint, the model choice) and runs nothing:
    seconds, no TensorFlow. It does not take the workdir's lock, so a run in
    progress does not block it (its unfinished jobs show up as pending).
    """
    cmd = dry_run_command(target, config_paths)
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        raise SubmitError(f"`{shlex.join(cmd[1:])}` in {workdir} took over {DRY_RUN_TIMEOUT} s; "
                          "run it yourself to see why") from err
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise SubmitError(f"`{shlex.join(cmd[1:])}` failed in {workdir} (exit status {proc.returncode}), so whether "
                          f"{target} is current is unknown; its output ends:\n{textwrap.indent(tail, '  ')}")
    return parse_dry_run(text)


def describe_jobs(jobs: Sequence[PendingJob], limit: int = 12) -> str:
    """The pending jobs, one line per rule in plan order: count and reasons, short.

    A rule's several jobs (17 predict jobs) share one line with the kinds of
    reason only ("Missing output files"); a single job keeps its files too
    ("Updated input files: results/metrics/best_model.txt"), shortened.
    """
    by_rule: dict[str, list[str]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job.reason)
    lines = []
    for rule, reasons in by_rule.items():
        if len(reasons) == 1:
            why = reasons[0]
        else:
            kinds = [part.split(": ")[0] for reason in reasons for part in reason.split("; ") if part]
            why = "; ".join(dict.fromkeys(kinds))
        count = f" ({len(reasons)} jobs)" if len(reasons) > 1 else ""
        lines.append(textwrap.shorten(f"{rule}{count}: {why or 'no reason given'}", width=160, placeholder=" ..."))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more rules"]
    return "\n".join(f"  {line}" for line in lines)


def same_content(submitted: Path, csv: Path) -> bool:
    """Whether ``submitted`` (decompressed, if .gz) holds exactly the bytes of ``csv``.

    Both are streamed in chunks (the CSV is about 700 MB). A gzip that cannot
    be read is not the CSV's gzip either.
    """
    opener = gzip.open if submitted.suffix == ".gz" else open
    try:
        with opener(submitted, "rb") as a, open(csv, "rb") as b:
            while True:
                chunk = a.read(CHUNK)
                if chunk != b.read(CHUNK):
                    return False
                if not chunk:
                    return True
    except (gzip.BadGzipFile, EOFError, zlib.error):  # not a gzip, or cut short
        return False


def check_current(path: Path, workdir: Path, config_paths: Sequence[str]) -> None:
    """Refuse a submission that is not the current run's: Kaggle would score an old model.

    The dry run first (seconds; it lists what changed and is the usual
    reason), then the byte comparison with ``results/submission.csv``, which
    also catches a .gz copied in from elsewhere whose time looks newer.
    """
    own_gz = path.resolve() == (workdir / SUBMISSION).resolve()
    target = SUBMISSION if own_gz else CSV
    where = "" if workdir.resolve() == Path.cwd().resolve() else f" in {workdir}"
    rebuild = f"`{build_command(target, config_paths)}`{where}"
    jobs = pending_jobs(target, config_paths, workdir)
    if jobs:
        raise SubmitError(f"{path} is not the current run's submission: with these config files the workflow "
                          f"would still run {len(jobs)} job{'s' if len(jobs) != 1 else ''} for {target}:\n"
                          f"{describe_jobs(jobs)}\nrun {rebuild} first, then submit again")
    csv = workdir / CSV
    if not csv.is_file():
        raise SubmitError(f"{csv} not found, so {path} cannot be the current run's: run {rebuild} first, "
                          "then submit again")
    if not same_content(path, csv):
        fix = (f"delete it and run {rebuild}" if own_gz
               else f"submit the workflow's own {SUBMISSION} (without --file)")
        raise SubmitError(f"{path} is from another run: it does not decompress to {csv} byte for byte; "
                          f"{fix}, then submit again")


def require_submission(path: Path, config_paths: Sequence[str]) -> None:
    """Stop with the command that builds the file when it is missing."""
    if not path.is_file():
        raise SubmitError(f"{path} not found: build it with `{build_command(SUBMISSION, config_paths)}` "
                          "(inference.gzip: true also makes it part of the default target)")


def check_submission(path: Path, manifest: Path, config_paths: Sequence[str]) -> int:
    """Validate the file against the test manifest; return its row count."""
    require_submission(path, config_paths)
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
    """Check the submission and run ``kaggle competitions submit``; return the message sent.

    Cheap checks first (the CLI, its credentials, the files the message
    needs), then whether the file is the current run's (dry run, byte
    comparison), then the full validation (reads every mask), then the upload.
    """
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
    path = workdir / (submission or SUBMISSION)
    message = submission_message(config, workdir)
    require_submission(path, config_paths)
    check_current(path, workdir, config_paths)
    rows = check_submission(path, workdir / "results" / "manifest" / "test.parquet", config_paths)
    competition = config["submit"]["competition"]
    print(f"{path}: {rows:,} valid masks; submitting to {competition}: {message!r}", flush=True)
    proc = subprocess.run([kaggle, "competitions", "submit", "-c", competition, "-f", str(path), "-m", message])
    if proc.returncode != 0:
        raise SubmitError(f"`kaggle competitions submit` failed with exit status {proc.returncode} (its output is above)")
    return message
