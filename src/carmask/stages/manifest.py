"""Scan and validate a Kaggle-layout Carvana folder into manifest tables.

Everything that can be wrong with a data folder is found here, before any
training or inference starts, and reported in one error that lists every
offending file: a run that dies three hours in on a missing mask, or one that
silently leaves an image out of the submission, is worse than no run.

The layout is Kaggle's (:mod:`carmask.planning.layout`). The workflow writes the two
manifests in separate jobs, so that a change on one side of the data reruns
only what depends on it; the train side's job checks the test side too, so
that no training starts on a folder whose test photos are broken.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from carmask import files
from carmask.planning.layout import IMAGE_RE, MASK_SUFFIX, SIDES, is_ignored

log = logging.getLogger(__name__)

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


def _list_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not is_ignored(p.name))


def _check_jpeg(path: Path) -> tuple[int, int] | str:
    """Return (height, width) of a readable JPEG, or why it is unreadable.

    Reading the header is cheap; a file whose end-of-image marker is missing
    (a partial download) is decoded fully to tell truncation from harmless
    trailing bytes.
    """
    try:
        with Image.open(path) as img:
            if img.format != "JPEG":
                return f"not a JPEG (it is {img.format})"
            size = (img.height, img.width)
            with open(path, "rb") as f:
                f.seek(max(path.stat().st_size - 64, 0))
                tail = f.read()
            if b"\xff\xd9" not in tail:
                img.load()
        return size
    except Exception as err:  # PIL raises many types for damaged files
        return f"unreadable or truncated JPEG ({type(err).__name__}: {err})"


def _check_mask(path: Path) -> tuple[tuple[int, int], int] | str:
    """Return ((height, width), number of distinct values) of a mask, or why not."""
    try:
        with Image.open(path) as img:
            img.load()
            size = (img.height, img.width)
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
            "width": np.array([sizes[n][1] for n in names], dtype=np.int32),
            "height": np.array([sizes[n][0] for n in names], dtype=np.int32),
        }
    )


def _list_folders(data_dir: Path, names: Iterable[str], problems: _Problems) -> dict[str, list[str]]:
    """The files of each named folder; missing or empty folders are problems."""
    listings: dict[str, list[str]] = {}
    for name in names:
        folder = data_dir / name
        if not folder.is_dir():
            problems.add("missing folders", str(folder))
            continue
        listings[name] = _list_files(folder)
        if not listings[name]:
            problems.add("empty folders", str(folder))
    return listings


def _check_case_duplicates(listings: dict[str, list[str]], problems: _Problems) -> None:
    """Names that differ only in case clash on case-insensitive filesystems."""
    for folder, names in listings.items():
        lowered: dict[str, list[str]] = {}
        for n in names:
            lowered.setdefault(n.lower(), []).append(n)
        for clash in lowered.values():
            if len(clash) > 1:
                problems.add("duplicate ids differing only in case", ", ".join(f"{folder}/{n}" for n in clash))


def _check_in_both(data_dir: Path, names: dict[str, dict[str, re.Match[str]]], problems: _Problems) -> None:
    """A photo both in train/ and test/ would be scored on what it was trained on.

    A side not being built is read from its folder (names only), so each
    side's job finds the clash on its own.
    """
    found = {}
    for side in ("train", "test"):
        folder = data_dir / side
        found[side] = set(names[side]) if side in names else set(_list_files(folder)) if folder.is_dir() else set()
    for name in sorted(found["train"] & found["test"]):
        problems.add("duplicate ids: in both train/ and test/", name)


def _pair_masks(train: dict[str, re.Match[str]], images: list[str], masks: list[str], problems: _Problems) -> dict[str, str]:
    """Each train photo's mask name; photos without a mask and masks without a photo are problems."""
    present = set(masks)
    mask_of = {n: n[: -len(".jpg")] + MASK_SUFFIX for n in train}
    for n, m in mask_of.items():
        if m not in present:
            problems.add("train images without a mask", f"train/{n} (expected train_masks/{m})")
    all_images = set(images)  # a mask of a skipped bad name is skipped with it
    for m in masks:
        if not m.endswith(MASK_SUFFIX) or m[: -len(MASK_SUFFIX)] + ".jpg" not in all_images:
            problems.add("masks without a train image", f"train_masks/{m}")
    return mask_of


def _sample_order(data_dir: Path, test: dict[str, re.Match[str]], partial_test: bool | None, problems: _Problems) -> list[str] | None:
    """``sample_submission.csv``'s order of the test photos, checked against test/ (None without the file).

    ``partial_test`` None leaves out the check that every listed photo is
    present (the train side's job checks the test side's files, not whether
    the test set is complete: that is the test side's own setting).
    """
    sample = data_dir / "sample_submission.csv"
    if not sample.is_file():
        return None
    try:
        order = pd.read_csv(sample, usecols=["img"])["img"].astype(str).tolist()
    except Exception as err:
        problems.add("unreadable sample_submission.csv", f"{sample} ({err})")
        return None
    expected, found = set(order), set(test)
    if len(expected) != len(order):
        problems.add("duplicate rows in sample_submission.csv", str(sample))
    absent = sorted(expected - found)
    if absent and partial_test is not False:
        if partial_test:
            log.warning("partial test set: %d of %d photos in sample_submission.csv are not in test/ and are left out", len(absent), len(expected))
        order = [n for n in order if n in found]
        absent = []
    for n in absent:
        problems.add("test images listed in sample_submission.csv but missing from test/ (set manifest.partial_test: true to run on the photos present)", f"test/{n}")
    for n in sorted(found - expected):
        problems.add("test images not listed in sample_submission.csv", f"test/{n}")
    return order


def _image_sizes(pool: ThreadPoolExecutor, folder: Path, names: list[str], problems: _Problems) -> dict[str, tuple[int, int]]:
    """(height, width) of every readable photo; unreadable ones are problems."""
    sizes: dict[str, tuple[int, int]] = {}
    for n, res in zip(names, pool.map(_check_jpeg, [folder / n for n in names])):
        if isinstance(res, str):
            problems.add("corrupt images", f"{folder.name}/{n}: {res}")
        else:
            sizes[n] = res
    return sizes


def _check_mask_files(pool: ThreadPoolExecutor, folder: Path, mask_of: dict[str, str], sizes: dict[str, tuple[int, int]], problems: _Problems) -> None:
    """Every mask readable, binary and the size of its photo."""
    names = list(mask_of)
    for n, res in zip(names, pool.map(_check_mask, [folder / mask_of[n] for n in names])):
        if isinstance(res, str):
            problems.add("corrupt masks", f"train_masks/{mask_of[n]}: {res}")
            continue
        size, levels = res
        if n in sizes and size != sizes[n]:
            problems.add(
                "masks whose size differs from their image",
                f"train_masks/{mask_of[n]}: {size[1]}x{size[0]}, image {sizes[n][1]}x{sizes[n][0]}",  # W x H, as image sizes are written
            )
        if levels > 2:
            problems.add("masks with more than two values (a mask must be binary)", f"train_masks/{mask_of[n]}: {levels} values")


def content_digest(path: Path) -> str:
    """A digest of a file's bytes (BLAKE2b, 16 hex digits).

    The manifest carries it for every training photo and mask, so that a
    corrected mask or a replaced photo changes the manifest's bytes, and with
    them the split and every job downstream, whichever run rewrote the
    manifest: Snakemake reruns a job whose small input is newer only when the
    input's content changed. A few seconds for Kaggle's 5,088 training pairs.
    """
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _content_columns(pool: ThreadPoolExecutor, paths: list[str], hashed: bool) -> dict[str, np.ndarray | list[str]]:
    """What identifies each file's content: its digest (``hashed``), or its size and mtime.

    Test photos are stat'ed, not read: hashing Kaggle's 100,064 would read
    15 GB each time the test side is scanned. As with ``make``, a test photo
    rewritten with the same size and the same mtime to the nanosecond goes
    unnoticed.
    """
    if hashed:
        return {"sha": list(pool.map(lambda p: content_digest(Path(p)), paths))}
    stats = list(pool.map(os.stat, paths))
    return {
        "bytes": np.array([st.st_size for st in stats], dtype=np.int64),
        "mtime_ns": np.array([st.st_mtime_ns for st in stats], dtype=np.int64),
    }


def _train_frame(pool: ThreadPoolExecutor, data_dir: Path, names: dict[str, re.Match[str]],
                 sizes: dict[str, tuple[int, int]], mask_of: dict[str, str]) -> pd.DataFrame:
    """The train manifest: each photo with its mask and both files' content digests."""
    train_df = _frame(names, data_dir / "train", sizes)
    train_df.insert(4, "mask_path", [str(data_dir / "train_masks" / mask_of[n]) for n in train_df["img"]])
    for column in ("image", "mask"):
        content = _content_columns(pool, train_df[f"{column}_path"].tolist(), hashed=True)
        train_df[f"{column}_sha"] = content["sha"]
    log.info("train manifest: %d images of %d cars", len(train_df), train_df["car"].nunique())
    return train_df


def _test_frame(pool: ThreadPoolExecutor, data_dir: Path, names: dict[str, re.Match[str]],
                sizes: dict[str, tuple[int, int]], sample_order: list[str] | None) -> pd.DataFrame:
    """The test manifest, in ``sample_submission.csv`` order when there is one, with each photo's size and mtime."""
    test_df = _frame(names, data_dir / "test", sizes)
    if sample_order is not None:
        test_df = test_df.set_index("img").loc[sample_order].reset_index()
    for key, values in _content_columns(pool, test_df["image_path"].tolist(), hashed=False).items():
        test_df[f"image_{key}"] = values
    log.info("test manifest: %d images", len(test_df))
    return test_df


def build_manifest(
    data_dir: str | Path,
    on_bad_name: str = "fail",
    threads: int = 1,
    partial_test: bool | None = False,
    sides: Iterable[str] = ("train", "test"),
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Scan ``data_dir`` and return (train, test) manifests, or raise DataError.

    Train rows carry ``img, car, view, image_path, mask_path, width, height,
    image_sha, mask_sha`` (paths as ``data_dir`` was given: relative to the
    working directory for the demo, so the same config gives the same bytes
    wherever it runs; the digests of :func:`content_digest`); test rows
    ``img, car, view, image_path, width, height, image_bytes,
    image_mtime_ns``, in ``sample_submission.csv`` order when that file
    exists. The content columns make a changed file change the manifest. With ``partial_test``, test photos listed
    in ``sample_submission.csv`` but absent from ``test/`` are left out with
    a warning (a run on part of the test set) instead of stopping the run;
    with None that completeness is not checked at all.

    ``sides`` chooses which manifests to build and check (the other is
    None). Names and pairs are checked first, then every file is opened;
    each phase reports all its problems in one error before the next,
    slower one starts.
    """
    if on_bad_name not in ("fail", "skip"):
        raise ValueError(f"on_bad_name must be 'fail' or 'skip', got {on_bad_name!r}")
    sides = [s for s in SIDES if s in set(sides)]
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist (set data_dir in config.yaml, or null for the demo)")
    problems = _Problems({})
    listings = _list_folders(data_dir, [f for s in sides for f in SIDES[s] if not f.endswith(".csv")], problems)
    problems.raise_if_any(data_dir)

    _check_case_duplicates(listings, problems)
    names: dict[str, dict[str, re.Match[str]]] = {}
    for side in sides:
        names[side] = _parse_names(listings[side], side, on_bad_name, problems)
    _check_in_both(data_dir, names, problems)
    if "train" in sides:
        mask_of = _pair_masks(names["train"], listings["train"], listings["train_masks"], problems)
    if "test" in sides:
        sample_order = _sample_order(data_dir, names["test"], partial_test, problems)
    problems.raise_if_any(data_dir)

    log.info("opening %s", ", ".join(f"{len(names[s])} {s} images" for s in sides))
    frames: dict[str, pd.DataFrame] = {}
    with ThreadPoolExecutor(max(1, threads)) as pool:
        sizes = {s: _image_sizes(pool, data_dir / s, list(names[s]), problems) for s in sides}
        if "train" in sides:
            _check_mask_files(pool, data_dir / "train_masks", mask_of, sizes["train"], problems)
        problems.raise_if_any(data_dir)

        if "train" in sides:
            frames["train"] = _train_frame(pool, data_dir, names["train"], sizes["train"], mask_of)
        if "test" in sides:
            frames["test"] = _test_frame(pool, data_dir, names["test"], sizes["test"], sample_order)
    return frames.get("train"), frames.get("test")


def write_manifest(
    data_dir: str | Path,
    side: str,
    out_path: str,
    on_bad_name: str = "fail",
    threads: int = 1,
    partial_test: bool = False,
) -> None:
    """Build one side's manifest (``"train"`` or ``"test"``) and write it atomically.

    The train side checks every test photo as well (though its manifest
    holds none of them): training is the expensive stage, and it must not
    start on a folder whose test side is broken. Whether the test set is
    complete (``partial_test``) is left to the test side, so that changing
    that setting does not retrain.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {sorted(SIDES)}, got {side!r}")
    if side == "train":
        frame, _ = build_manifest(data_dir, on_bad_name, threads, partial_test=None, sides=SIDES)
    else:
        _, frame = build_manifest(data_dir, on_bad_name, threads, partial_test, sides=["test"])
    files.write_parquet(frame, out_path)
