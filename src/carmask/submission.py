"""Merge RLE shards into the Kaggle submission, validated before it is written.

The CSV is only written when it holds exactly the test set, each image once,
every RLE well formed and inside its image: a submission that silently misses
images scores badly on Kaggle hours later, so it must not exist at all.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from carmask import files, rle

log = logging.getLogger(__name__)
MAX_LISTED = 10


class SubmissionError(ValueError):
    """A submission is malformed; the message lists what is wrong."""


def _listed(kind: str, names: Sequence[str]) -> str:
    shown = ", ".join(map(str, names[:MAX_LISTED]))
    more = f" ... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return f"{kind} ({len(names)}): {shown}{more}"


def validate_submission(sub: pd.DataFrame, expected: pd.DataFrame, source: str = "submission") -> None:
    """Raise SubmissionError unless ``sub`` covers ``expected`` exactly and validly.

    ``expected`` has columns img, height, width. Checks: header, every image
    once, no extra images, every RLE parses with positive, strictly
    increasing runs inside height x width.
    """
    problems: list[str] = []
    if list(sub.columns) != ["img", "rle_mask"]:
        raise SubmissionError(f"{source}: header must be 'img,rle_mask', found {','.join(map(str, sub.columns))}")
    names = sub["img"].astype(str)
    dup = names[names.duplicated()].unique().tolist()
    if dup:
        problems.append(_listed("duplicate images", dup))
    want = set(expected["img"])
    have = set(names)
    missing = sorted(want - have)
    extra = sorted(have - want)
    if missing:
        problems.append(_listed("missing images", missing))
    if extra:
        problems.append(_listed("images not in the test set", extra))
    sizes = dict(zip(expected["img"], zip(expected["height"], expected["width"])))
    bad: list[str] = []
    for img, code in zip(names, sub["rle_mask"]):
        if img not in sizes:
            continue
        try:
            rle.validate("" if pd.isna(code) else code, *sizes[img])
        except rle.RLEError as err:
            bad.append(f"{img} ({err})")
    if bad:
        problems.append(_listed("bad RLE", bad))
    if problems:
        raise SubmissionError(f"{source} is not a valid submission:\n- " + "\n- ".join(problems))


def merge_shards(shard_paths: Sequence[str], manifest_path: str, out_csv: str) -> pd.DataFrame:
    """Concatenate RLE shards, order them as the test manifest, validate, write.

    The manifest is already in ``sample_submission.csv`` order when the data
    folder has one. Returns the written frame.
    """
    expected = pd.read_parquet(manifest_path, columns=["img", "height", "width"])
    sub = pd.concat([pd.read_parquet(p) for p in shard_paths], ignore_index=True)
    validate_submission(sub, expected, source=f"merged shards for {out_csv}")
    sub = sub.set_index("img").loc[expected["img"]].reset_index()
    with files.atomic_path(out_csv) as tmp:
        sub.to_csv(tmp, index=False)
    log.info("wrote %s: %d rows", out_csv, len(sub))
    return sub


def read_submission(path: str | Path) -> pd.DataFrame:
    """Read a submission CSV (plain or .gz) keeping empty masks as ''."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def gzip_file(src: str, dst: str) -> None:
    """Compress ``src`` to ``dst`` (Kaggle accepts .csv.gz) with reproducible bytes.

    The gzip header stores a file name and a time: the name is ``src``'s own
    (not the temporary file's) and the time 0, so the same CSV always gives
    the same archive.
    """
    with files.atomic_path(dst) as tmp, open(tmp, "wb") as raw:
        with open(src, "rb") as fin, gzip.GzipFile(filename=Path(src).name, mode="wb", fileobj=raw, mtime=0) as fout:
            shutil.copyfileobj(fin, fout)


def choose_best(metrics_paths: dict[str, str], out_path: str) -> str:
    """Write the name of the model with the highest validation Dice (ties: first name)."""
    scores = {name: json.loads(Path(p).read_text())["dice_mean"] for name, p in metrics_paths.items()}
    best = max(sorted(scores), key=lambda name: scores[name])
    log.info("validation Dice by model: %s; best: %s", scores, best)
    files.write_text(best + "\n", out_path)
    return best


def read_choice(path: str | Path) -> str:
    """The model name :func:`choose_best` wrote."""
    return Path(path).read_text().strip()
