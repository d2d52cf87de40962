"""Merge RLE shards into the Kaggle submission, validated before it is written.

The CSV is only written when it holds exactly the test set, each image once,
every RLE well formed and inside its image: a submission that silently misses
images scores badly on Kaggle hours later, so it must not exist at all.

The merge streams: the whole test set's masks (over 1 GB of text for
Kaggle's 100,064 photos) are never in memory at once, only a shard's.

It is also the last job of a run, alone on the machine, so its speed is the
run's tail: slices of ``_SLICE_ROWS`` masks are checked and written as whole
Arrow columns (:func:`carmask.masks.rle_columns.all_valid`, :func:`_csv_bytes`); only a slice
that this cannot vouch for (an RLE written otherwise than the encoder writes
it, a name that needs CSV quoting, a bad mask) goes row by row through
:func:`carmask.masks.rle.validate` and the ``csv`` module, which decide what
is refused and how it is reported.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from carmask import files
from carmask.masks import rle, rle_columns
from carmask.logs import Progress

log = logging.getLogger(__name__)
MAX_LISTED = 10
SUBMISSION_COLUMNS = ["img", "rle_mask"]
# What makes the csv module quote a field (QUOTE_MINIMAL, ',' and '"', any line end).
_NEEDS_QUOTES = r'[,"\r\n]'
# Rows checked and written at once: the checks' arrays are several times the masks' text.
_SLICE_ROWS = 1024
# What an RLE shard's rle_mask column may hold (null: a shard whose every mask is missing, i.e. empty).
_TEXT_TYPES = (pa.string(), pa.large_string(), pa.null())


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
    areas = names.map({img: h * w for img, (h, w) in sizes.items()}).to_numpy(dtype=float)  # NaN: not in the test set
    # Whole slices only when every mask is text (pyarrow would also decode bytes, which the row check refuses).
    text = pd.api.types.infer_dtype(sub["rle_mask"], skipna=True) in ("string", "empty")
    bad: list[str] = []
    for a in range(0, len(sub), _SLICE_ROWS):
        b = min(a + _SLICE_ROWS, len(sub))
        if text and not np.isnan(areas[a:b]).any():
            part = pa.array(sub["rle_mask"].iloc[a:b], type=pa.large_string(), from_pandas=True)
            part = part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part  # pandas' Arrow strings
            if rle_columns.all_valid(part, areas[a:b].astype(np.int64)):
                continue
        for img, code in zip(names[a:b], sub["rle_mask"].iloc[a:b]):
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
                kind = pf.schema_arrow.field("rle_mask").type
                if kind not in _TEXT_TYPES:
                    raise SubmissionError(f"{source}: rle_mask must be text, found {kind} in {path}")
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


def _gather(cache: _RowGroupCache, shard: np.ndarray, group: np.ndarray, local: np.ndarray) -> pa.ChunkedArray:
    """The masks at (shard, row group, row) positions, in the order given, each row group read once.

    When the shards are contiguous blocks of the manifest (the workflow's
    layout) the rows come in row-group order as runs of consecutive rows:
    the result is then slices of the row groups read. Every piece is cast to
    ``large_string``: shards may hold ``string`` (the encoder's), ``large_string``
    (pandas') or ``null`` columns, and a chunk may span several shards.
    """
    if not len(shard):
        return pa.chunked_array([], pa.large_string())
    keys = shard.astype(np.int64) << 32 | group.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    chunks = []
    for part in np.split(order, bounds):
        column = cache.get(int(shard[part[0]]), int(group[part[0]]))
        rows = local[part]
        piece = column.slice(int(rows[0]), len(rows)) if (np.diff(rows) == 1).all() else column.take(pa.array(rows))
        chunks.extend(piece.cast(pa.large_string()).chunks)  # large: a shard's text may pass 2 GB
    gathered = pa.chunked_array(chunks, pa.large_string())  # in ``order``: row order[j] is gathered[j]
    if (np.diff(order) == 1).all():
        return gathered
    return gathered.take(pa.array(np.argsort(order)))


def _csv_bytes(names: pa.Array, codes: pa.Array) -> pa.Buffer:
    """The rows ``name,code`` of fields that need no quoting, as the csv module writes them, in one buffer.

    Both arrays are ``large_string`` (the offsets are read as int64).
    """
    text = lambda value: pa.scalar(value, pa.large_string())  # noqa: E731
    lines = pc.binary_join_element_wise(names, codes.fill_null(""), text(","))
    lines = pc.binary_join_element_wise(lines, text(""), text(os.linesep))  # "name,code" + line end
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _csv_text_rows(names: Sequence[str], codes: Sequence[str | None]) -> bytes:
    """The rows as the csv module writes them, quoting where needed (what ``to_csv(index=False)`` writes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL)
    writer.writerows(zip(names, ("" if c is None else c for c in codes)))
    return out.getvalue().encode("utf-8")


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
    names = pa.array(want, pa.large_string())
    quoted = pc.match_substring_regex(names, _NEEDS_QUOTES).to_numpy(zero_copy_only=False)
    pixels = np.asarray(heights, dtype=np.int64) * np.asarray(widths, dtype=np.int64)
    chunk = max([*index.rows, 1])
    cache = _RowGroupCache(index.paths)
    bad = _BadRLEs()
    progress = Progress(len(want), "merged", log)
    with files.atomic_path(out_csv) as tmp, open(tmp, "wb") as handle:
        handle.write(_csv_text_rows([SUBMISSION_COLUMNS[0]], [SUBMISSION_COLUMNS[1]]))
        for start in range(0, len(want), chunk):
            rows = where[start : start + chunk]
            stop = start + len(rows)
            codes = _gather(cache, index.shard[rows], index.group[rows], index.local[rows])
            for a in range(start, stop, _SLICE_ROWS):  # slices bound what the checks hold beside the chunk
                b = min(a + _SLICE_ROWS, stop)
                part = codes.slice(a - start, b - a).combine_chunks()
                if not quoted[a:b].any() and rle_columns.all_valid(part, pixels[a:b]):
                    handle.write(_csv_bytes(names[a:b], part))
                else:
                    texts = part.to_pylist()
                    for m, code, position in zip(range(a, b), texts, rows[a - start : b - start].tolist()):
                        _check_rle(code, want[m], heights[m], widths[m], position, bad)
                    handle.write(_csv_text_rows(want[a:b], texts))
                progress.update(b - a)
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
