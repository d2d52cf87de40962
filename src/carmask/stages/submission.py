"""Merge RLE shards into the Kaggle submission, validated before it is written.

The CSV is only written when it holds exactly the test set, each image once,
every RLE well formed and inside its image: a submission that silently misses
images scores badly on Kaggle hours later, so it must not exist at all.

The merge streams: the whole test set's masks (over 1 GB of text for
Kaggle's 100,064 photos) are never in memory at once, only a shard's.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import json
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from carmask import files
from carmask.masks import rle
from carmask.logs import Progress

log = logging.getLogger(__name__)
MAX_LISTED = 10
SUBMISSION_COLUMNS = ["img", "rle_mask"]


class SubmissionError(ValueError):
    """A submission is malformed; the message lists what is wrong."""


def _listed(kind: str, names: Sequence[str], total: int | None = None) -> str:
    """``kind (total): the first MAX_LISTED names ... and N more``; ``total`` when only the first names were kept."""
    total = len(names) if total is None else total
    shown = ", ".join(map(str, names[:MAX_LISTED]))
    more = f" ... and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"{kind} ({total}): {shown}{more}"


def validate_submission(sub: pd.DataFrame, expected: pd.DataFrame, source: str = "submission") -> None:
    """Raise SubmissionError unless ``sub`` covers ``expected`` exactly and validly.

    ``expected`` has columns img, height, width. Checks: header, every image
    once, no extra images, every RLE parses with positive, strictly
    increasing runs inside height x width.
    """
    problems: list[str] = []
    if list(sub.columns) != SUBMISSION_COLUMNS:
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


class _BadRLEs:
    """Bad RLEs seen so far: their count and the first few in shard order.

    Remembers at most ``MAX_LISTED`` entries (those earliest in the shards'
    concatenation, the order :func:`validate_submission` lists them in), so a
    submission whose every mask is broken still costs no memory to report.
    """

    def __init__(self) -> None:
        self.count = 0
        self._first: list[tuple[int, str]] = []  # a max-heap by position, as (-position, text)

    def add(self, position: int, text: str) -> None:
        self.count += 1
        if len(self._first) < MAX_LISTED:
            heapq.heappush(self._first, (-position, text))
        elif -self._first[0][0] > position:
            heapq.heapreplace(self._first, (-position, text))

    def listed(self) -> str:
        return _listed("bad RLE", [text for _, text in sorted(self._first, reverse=True)], self.count)


class _ShardIndex:
    """Where each image of a set of RLE shards is: shard, row group, row.

    Built from the ``img`` column alone (a few MB for the whole test set),
    so coverage is known before any mask is read. Rows are numbered in the
    shards' concatenation (shard by shard, row by row): ``shard[i]``,
    ``group[i]`` and ``local[i]`` (the row within its row group) locate row
    ``i``.
    """

    def __init__(self, shard_paths: Sequence[str | Path], source: str) -> None:
        self.paths = [str(p) for p in shard_paths]
        names: list[str] = []
        shard, group, local = [], [], []
        self.rows: list[int] = []
        for i, path in enumerate(self.paths):
            with pq.ParquetFile(path) as pf:
                columns = [c for c in pf.schema_arrow.names if not c.startswith("__index_level_")]
                if columns != SUBMISSION_COLUMNS:
                    found = ",".join(columns)
                    raise SubmissionError(f"{source}: header must be 'img,rle_mask', found {found} in {path}")
                sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
                names.extend(str(v) for v in pf.read(columns=["img"]).column(0).to_pylist())
            n = sum(sizes)
            self.rows.append(n)
            shard.append(np.full(n, i, dtype=np.int32))
            group.append(np.repeat(np.arange(len(sizes), dtype=np.int32), sizes))
            local.append(np.concatenate([np.arange(s, dtype=np.int64) for s in sizes] or [np.zeros(0, np.int64)]))
        self.names = pd.Series(names, dtype=object)
        self.shard = np.concatenate(shard) if shard else np.zeros(0, np.int32)
        self.group = np.concatenate(group) if group else np.zeros(0, np.int32)
        self.local = np.concatenate(local) if local else np.zeros(0, np.int64)

    def coverage_problems(self, expected_names: Sequence[str]) -> list[str]:
        """What :func:`validate_submission` says about the image names, in its words."""
        problems: list[str] = []
        dup = self.names[self.names.duplicated()].unique().tolist()
        if dup:
            problems.append(_listed("duplicate images", dup))
        want, have = set(expected_names), set(self.names)
        missing, extra = sorted(want - have), sorted(have - want)
        if missing:
            problems.append(_listed("missing images", missing))
        if extra:
            problems.append(_listed("images not in the test set", extra))
        return problems


class _RowGroupCache:
    """The ``rle_mask`` column of the last few row groups read (least recently used dropped).

    Consecutive chunks of the manifest usually need the same row group at
    their boundary; holding ``size`` groups avoids reading it twice, and
    bounds what is held to ``size`` row groups (each at most a shard).
    """

    def __init__(self, paths: Sequence[str], size: int = 2) -> None:
        self.paths, self.size = paths, size
        self._held: OrderedDict[tuple[int, int], pa.ChunkedArray] = OrderedDict()

    def get(self, shard: int, group: int) -> pa.ChunkedArray:
        key = (shard, group)
        if key in self._held:
            self._held.move_to_end(key)
            return self._held[key]
        with pq.ParquetFile(self.paths[shard]) as pf:
            column = pf.read_row_group(group, columns=["rle_mask"]).column(0)
        self._held[key] = column
        while len(self._held) > self.size:
            self._held.popitem(last=False)
        return column


def _check_rle(code: str | None, img: str, height: int, width: int, position: int, bad: _BadRLEs) -> None:
    try:
        rle.validate("" if code is None else code, height, width)
    except rle.RLEError as err:
        bad.add(position, f"{img} ({err})")


def _scan_bad_rles(index: _ShardIndex, sizes: dict[str, tuple[int, int]]) -> _BadRLEs:
    """Check every RLE of the shards, one row group at a time, for the error report.

    Only run when coverage already failed, so the message lists the bad masks
    too, as :func:`validate_submission` does.
    """
    bad = _BadRLEs()
    position = 0
    for path in index.paths:
        with pq.ParquetFile(path) as pf:
            for g in range(pf.metadata.num_row_groups):
                table = pf.read_row_group(g, columns=SUBMISSION_COLUMNS)
                for img, code in zip(table.column(0).to_pylist(), table.column(1).to_pylist()):
                    img = str(img)
                    if img in sizes:
                        _check_rle(code, img, *sizes[img], position, bad)
                    position += 1
    return bad


def _gather(cache: _RowGroupCache, shard: np.ndarray, group: np.ndarray, local: np.ndarray) -> list[str | None]:
    """The masks at (shard, row group, row) positions, in the order given, each row group read once."""
    codes: list[str | None] = [None] * len(shard)
    keys = shard.astype(np.int64) << 32 | group.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    for part in np.split(order, bounds) if len(order) else []:
        column = cache.get(int(shard[part[0]]), int(group[part[0]]))
        for i, code in zip(part.tolist(), column.take(pa.array(local[part])).to_pylist()):
            codes[i] = code
    return codes


def merge_shards(shard_paths: Sequence[str | Path], manifest_path: str | Path, out_csv: str | Path) -> int:
    """Write the RLE shards as one CSV in the test manifest's order, validated; return its row count.

    The manifest is already in ``sample_submission.csv`` order when the data
    folder has one. Memory is bounded by a shard, not by the test set (the
    old concatenate-then-write peaked at 5.9 GB over Kaggle's 100,064
    photos): only the ``img`` column of every shard is read up front, to
    check that the shards hold every manifest image exactly once and
    nothing else; then the manifest is written in chunks of at most a
    shard's rows, each chunk's masks read from the row groups that hold
    them (one pass when shards are contiguous blocks of the manifest, one
    pass per shard at worst when they are shuffled), checked against the
    image size and appended. Nothing is written when coverage fails; a bad
    RLE found while writing removes the temporary file, so ``out_csv`` never
    exists unless it is a valid submission. Errors read as
    :func:`validate_submission`'s, and the bytes are those of pandas'
    ``to_csv(index=False)`` of the ordered frame.
    """
    source = f"merged shards for {out_csv}"
    expected = pd.read_parquet(manifest_path, columns=["img", "height", "width"])
    want = expected["img"].astype(str).tolist()
    heights, widths = expected["height"].tolist(), expected["width"].tolist()
    del expected
    index = _ShardIndex(shard_paths, source)
    problems = index.coverage_problems(want)
    if problems:
        bad = _scan_bad_rles(index, dict(zip(want, zip(heights, widths))))
        if bad.count:
            problems.append(bad.listed())
        raise SubmissionError(f"{source} is not a valid submission:\n- " + "\n- ".join(problems))
    where = pd.Index(index.names).get_indexer(want)  # no duplicates, no gaps: every entry >= 0
    chunk = max([*index.rows, 1])
    cache = _RowGroupCache(index.paths)
    bad = _BadRLEs()
    progress = Progress(len(want), "merged", log)
    with files.atomic_path(out_csv) as tmp:
        # What DataFrame.to_csv(index=False) writes: csv module, minimal quoting, os.linesep, utf-8.
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL)
            writer.writerow(SUBMISSION_COLUMNS)
            for start in range(0, len(want), chunk):
                rows = where[start : start + chunk]
                codes = _gather(cache, index.shard[rows], index.group[rows], index.local[rows])
                for m, code, position in zip(range(start, start + len(rows)), codes, rows.tolist()):
                    _check_rle(code, want[m], heights[m], widths[m], position, bad)
                writer.writerows(zip(want[start : start + chunk], ("" if c is None else c for c in codes)))
                progress.update(len(rows))
                del codes  # else the next chunk is gathered while this one is still held
        if bad.count:
            raise SubmissionError(f"{source} is not a valid submission:\n- " + bad.listed())
    log.info("wrote %s: %d rows", out_csv, len(want))
    return len(want)


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
