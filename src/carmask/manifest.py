"""Scan and validate a Kaggle-layout Carvana folder into manifest tables.

Everything that can be wrong with a data folder is found here, before any
training or inference starts, and reported in one error that lists every
offending file: a run that dies three hours in on a missing mask, or one that
silently leaves an image out of the submission, is worse than no run.

Layout (Kaggle's): ``train/<car>_<NN>.jpg``, ``train_masks/<car>_<NN>_mask.gif``,
``test/<car>_<NN>.jpg``, and optionally ``sample_submission.csv`` (whose order
the submission follows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from carmask import io

log = logging.getLogger(__name__)

IMAGE_RE = re.compile(r"^(?P<car>[0-9a-f]{12})_(?P<view>\d{2})\.jpg$")
MASK_SUFFIX = "_mask.gif"
# Files that operating systems and file managers drop into folders.
IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini", ".directory"}
MAX_LISTED = 20


class DataError(ValueError):
    """The data folder has a problem; the message names every file involved."""


@dataclass
class _Problems:
    """Collects problems by kind so one error can list them all."""

    items: dict[str, list[str]]

    def add(self, kind: str, what: str) -> None:
        self.items.setdefault(kind, []).append(what)

    def raise_if_any(self, data_dir: Path) -> None:
        if not self.items:
            return
        lines = [f"data folder {data_dir} has problems:"]
        for kind, whats in self.items.items():
            lines.append(f"- {kind} ({len(whats)}):")
            lines += [f"    {w}" for w in sorted(whats)[:MAX_LISTED]]
            if len(whats) > MAX_LISTED:
                lines.append(f"    ... and {len(whats) - MAX_LISTED} more")
        raise DataError("\n".join(lines))


def _is_ignored(name: str) -> bool:
    return name.lower() in IGNORED_NAMES or name.startswith("._") or name.startswith(".")


def _list_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not _is_ignored(p.name))


def _check_jpeg(path: Path) -> tuple[int, int] | str:
    """Return (width, height) of a readable JPEG, or why it is unreadable.

    Reading the header is cheap; a file whose end-of-image marker is missing
    (a partial download) is decoded fully to tell truncation from harmless
    trailing bytes.
    """
    try:
        with Image.open(path) as img:
            if img.format != "JPEG":
                return f"not a JPEG (it is {img.format})"
            size = img.size
            with open(path, "rb") as f:
                f.seek(max(path.stat().st_size - 64, 0))
                tail = f.read()
            if b"\xff\xd9" not in tail:
                img.load()
        return size
    except Exception as err:  # PIL raises many types for damaged files
        return f"unreadable or truncated JPEG ({type(err).__name__}: {err})"


def _check_mask(path: Path) -> tuple[tuple[int, int], int] | str:
    """Return ((width, height), number of distinct values) of a mask, or why not."""
    try:
        with Image.open(path) as img:
            img.load()
            size = img.size
            arr = np.asarray(img if img.mode in ("P", "L", "1") else img.convert("L"))
        return size, int(np.unique(arr).size)
    except Exception as err:
        return f"unreadable or truncated mask ({type(err).__name__}: {err})"


def _parse_names(names: Iterable[str], folder: str, on_bad_name: str, problems: _Problems) -> dict[str, re.Match[str]]:
    parsed: dict[str, re.Match[str]] = {}
    bad = []
    for name in names:
        m = IMAGE_RE.match(name)
        if m:
            parsed[name] = m
        else:
            bad.append(f"{folder}/{name}")
    if bad and on_bad_name == "fail":
        for b in bad:
            problems.add("names not of the form <12-hex car id>_<NN>.jpg (set manifest.on_bad_name: skip to leave them out)", b)
    elif bad:
        log.warning("skipping %d files in %s/ not named <car>_<NN>.jpg, e.g. %s", len(bad), folder, bad[:3])
    return parsed


def _frame(parsed: dict[str, re.Match[str]], folder: Path, sizes: dict[str, tuple[int, int]]) -> pd.DataFrame:
    names = sorted(n for n in parsed if n in sizes)
    return pd.DataFrame(
        {
            "img": names,
            "car": [parsed[n]["car"] for n in names],
            "view": np.array([int(parsed[n]["view"]) for n in names], dtype=np.int16),
            "image_path": [str(folder / n) for n in names],
            "width": np.array([sizes[n][0] for n in names], dtype=np.int32),
            "height": np.array([sizes[n][1] for n in names], dtype=np.int32),
        }
    )


def build_manifest(
    data_dir: str | Path, on_bad_name: str = "fail", threads: int = 1, partial_test: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scan ``data_dir`` and return (train, test) manifests, or raise DataError.

    Train rows carry ``img, car, view, image_path, mask_path, width, height``
    (paths as ``data_dir`` was given: relative to the working directory for
    the demo, so the same config gives the same bytes wherever it runs);
    test rows the same without ``mask_path``, in ``sample_submission.csv``
    order when that file exists. With ``partial_test``, test photos listed
    in ``sample_submission.csv`` but absent from ``test/`` are left out with
    a warning (a run on part of the test set) instead of stopping the run.
    """
    if on_bad_name not in ("fail", "skip"):
        raise ValueError(f"on_bad_name must be 'fail' or 'skip', got {on_bad_name!r}")
    data_dir = Path(data_dir)
    problems = _Problems({})
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist (set data_dir in config.yaml, or null for the demo)")
    folders = {name: data_dir / name for name in ("train", "train_masks", "test")}
    listings: dict[str, list[str]] = {}
    for name, folder in folders.items():
        if not folder.is_dir():
            problems.add("missing folders", str(folder))
        else:
            listings[name] = _list_files(folder)
            if not listings[name]:
                problems.add("empty folders", str(folder))
    problems.raise_if_any(data_dir)

    train = _parse_names(listings["train"], "train", on_bad_name, problems)
    test = _parse_names(listings["test"], "test", on_bad_name, problems)
    for name in sorted(set(train) & set(test)):
        problems.add("duplicate ids: in both train/ and test/", name)
    lowered: dict[str, list[str]] = {}
    for folder, names in listings.items():
        for n in names:
            lowered.setdefault(f"{folder}/{n.lower()}", []).append(n)
    for key, names in lowered.items():
        if len(names) > 1:
            problems.add("duplicate ids differing only in case", ", ".join(f"{key.split('/')[0]}/{n}" for n in names))

    masks = set(listings["train_masks"])
    mask_of = {n: n[: -len(".jpg")] + MASK_SUFFIX for n in train}
    for n, m in mask_of.items():
        if m not in masks:
            problems.add("train images without a mask", f"train/{n} (expected train_masks/{m})")
    all_train = set(listings["train"])  # a mask of a skipped bad name is skipped with it
    for m in sorted(masks):
        if not m.endswith(MASK_SUFFIX) or m[: -len(MASK_SUFFIX)] + ".jpg" not in all_train:
            problems.add("masks without a train image", f"train_masks/{m}")

    sample = data_dir / "sample_submission.csv"
    sample_order: list[str] | None = None
    if sample.is_file():
        try:
            sample_order = pd.read_csv(sample, usecols=["img"])["img"].astype(str).tolist()
        except Exception as err:
            problems.add("unreadable sample_submission.csv", f"{sample} ({err})")
        else:
            expected, found = set(sample_order), set(test)
            if len(expected) != len(sample_order):
                problems.add("duplicate rows in sample_submission.csv", str(sample))
            absent = sorted(expected - found)
            if partial_test and absent:
                log.warning("partial test set: %d of %d photos in sample_submission.csv are not in test/ and are left out", len(absent), len(expected))
                sample_order = [n for n in sample_order if n in found]
                absent = []
            for n in absent:
                problems.add("test images listed in sample_submission.csv but missing from test/ (set manifest.partial_test: true to run on the photos present)", f"test/{n}")
            for n in sorted(found - expected):
                problems.add("test images not listed in sample_submission.csv", f"test/{n}")
    problems.raise_if_any(data_dir)

    log.info("checking %d train images, %d masks, %d test images", len(train), len(mask_of), len(test))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        train_checks = dict(zip(train, pool.map(_check_jpeg, [folders["train"] / n for n in train])))
        mask_checks = dict(zip(train, pool.map(_check_mask, [folders["train_masks"] / mask_of[n] for n in train])))
        test_checks = dict(zip(test, pool.map(_check_jpeg, [folders["test"] / n for n in test])))

    train_sizes: dict[str, tuple[int, int]] = {}
    for n, res in train_checks.items():
        if isinstance(res, str):
            problems.add("corrupt images", f"train/{n}: {res}")
        else:
            train_sizes[n] = res
    for n, res in mask_checks.items():
        if isinstance(res, str):
            problems.add("corrupt masks", f"train_masks/{mask_of[n]}: {res}")
            continue
        (size, levels) = res
        if n in train_sizes and size != train_sizes[n]:
            problems.add(
                "masks whose size differs from their image",
                f"train_masks/{mask_of[n]}: {size[0]}x{size[1]}, image {train_sizes[n][0]}x{train_sizes[n][1]}",
            )
        if levels > 2:
            problems.add("masks with more than two values (a mask must be binary)", f"train_masks/{mask_of[n]}: {levels} values")
    test_sizes: dict[str, tuple[int, int]] = {}
    for n, res in test_checks.items():
        if isinstance(res, str):
            problems.add("corrupt images", f"test/{n}: {res}")
        else:
            test_sizes[n] = res
    problems.raise_if_any(data_dir)

    train_df = _frame(train, folders["train"], train_sizes)
    train_df.insert(4, "mask_path", [str(folders["train_masks"] / mask_of[n]) for n in train_df["img"]])
    test_df = _frame(test, folders["test"], test_sizes)
    if sample_order is not None:
        test_df = test_df.set_index("img").loc[sample_order].reset_index()
    log.info("manifest: %d train images of %d cars, %d test images", len(train_df), train_df["car"].nunique(), len(test_df))
    return train_df, test_df


def write_manifest(
    data_dir: str | Path, train_out: str, test_out: str, on_bad_name: str = "fail", threads: int = 1, partial_test: bool = False
) -> None:
    """Build and atomically write both manifests."""
    train, test = build_manifest(data_dir, on_bad_name, threads, partial_test)
    io.write_parquet(train, train_out)
    io.write_parquet(test, test_out)
