"""Submission validation and merge order."""

import itertools

import numpy as np
import pandas as pd
import pytest

from carmask.files import write_parquet
from carmask.stages.submission import SubmissionError, gzip_file, merge_shards, read_submission, validate_submission

EXPECTED = pd.DataFrame({"img": ["b.jpg", "a.jpg", "c.jpg"], "height": [2, 2, 2], "width": [3, 3, 3]})


def sub(rows):
    return pd.DataFrame(rows, columns=["img", "rle_mask"])


def test_valid_submission_passes():
    validate_submission(sub([("a.jpg", "1 2"), ("b.jpg", ""), ("c.jpg", "6 1")]), EXPECTED)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("a.jpg", "1 2"), ("b.jpg", "")], r"missing images \(1\): c.jpg"),
        ([("a.jpg", "1 2"), ("a.jpg", "1 2"), ("b.jpg", ""), ("c.jpg", "")], r"duplicate images \(1\): a.jpg"),
        ([("a.jpg", ""), ("b.jpg", ""), ("c.jpg", ""), ("d.jpg", "")], r"not in the test set \(1\): d.jpg"),
        ([("a.jpg", "3 1 2 1"), ("b.jpg", ""), ("c.jpg", "")], r"bad RLE \(1\): a.jpg"),
        ([("a.jpg", "6 2"), ("b.jpg", ""), ("c.jpg", "")], r"past the image"),
    ],
)
def test_broken_submissions_rejected(rows, message):
    with pytest.raises(SubmissionError, match=message):
        validate_submission(sub(rows), EXPECTED)


def test_wrong_header_rejected():
    with pytest.raises(SubmissionError, match="header"):
        validate_submission(pd.DataFrame({"id": ["a.jpg"], "mask": [""]}), EXPECTED)


def test_merge_orders_as_manifest_and_refuses_gaps(tmp_path):
    write_parquet(EXPECTED, tmp_path / "manifest.parquet")
    write_parquet(sub([("c.jpg", "6 1"), ("a.jpg", "1 2")]), tmp_path / "s0.parquet")
    write_parquet(sub([("b.jpg", "")]), tmp_path / "s1.parquet")
    out = tmp_path / "submission.csv"
    merge_shards([tmp_path / "s0.parquet", tmp_path / "s1.parquet"], tmp_path / "manifest.parquet", str(out))
    assert out.read_text() == "img,rle_mask\nb.jpg,\na.jpg,1 2\nc.jpg,6 1\n"
    gzip_file(str(out), str(tmp_path / "submission.csv.gz"))
    assert read_submission(tmp_path / "submission.csv.gz").equals(read_submission(out))
    out.unlink()
    with pytest.raises(SubmissionError, match="missing images"):
        merge_shards([tmp_path / "s0.parquet"], tmp_path / "manifest.parquet", str(out))
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_gzip_is_byte_identical_from_run_to_run(tmp_path):
    # The gzip header holds a file name and a time: they must be the CSV's own
    # name and 0, not the temporary file's name and the clock.
    import gzip
    import os
    import time

    csv = tmp_path / "submission.csv"
    csv.write_text("img,rle_mask\na.jpg,1 2\n")
    first, second = tmp_path / "a" / "submission.csv.gz", tmp_path / "b" / "submission.csv.gz"
    gzip_file(str(csv), str(first))
    os.utime(csv, (time.time() + 100, time.time() + 100))
    gzip_file(str(csv), str(second))
    assert first.read_bytes() == second.read_bytes()
    header = first.read_bytes()
    assert header[4:8] == b"\0\0\0\0"  # MTIME 0
    assert header[10:].startswith(b"submission.csv\0")  # FNAME, as gunzip restores it
    assert gzip.decompress(header) == csv.read_bytes()


def test_choose_best_and_read_choice(tmp_path):
    import json

    from carmask.stages.submission import choose_best, read_choice

    paths = {}
    for name, dice in (("b", 0.97), ("a", 0.98), ("c", 0.98)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps({"dice_mean": dice}))
    assert choose_best(paths, tmp_path / "best.txt") == "a"  # ties go to the first name
    assert read_choice(tmp_path / "best.txt") == "a"


# --- merge_shards streams shard by shard: same bytes and errors as concat-then-write ---


def concat_then_write(shard_paths, manifest_path, out_csv):
    """The merge as it was (whole test set in one frame): the reference for bytes and messages."""
    from carmask.files import atomic_path

    expected = pd.read_parquet(manifest_path, columns=["img", "height", "width"])
    frame = pd.concat([pd.read_parquet(p) for p in shard_paths], ignore_index=True)
    validate_submission(frame, expected, source=f"merged shards for {out_csv}")
    frame = frame.set_index("img").loc[expected["img"]].reset_index()
    with atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)


def random_rle(rng, height, width):
    """A valid RLE (sometimes empty) of a few runs inside height x width."""
    n = min(int(rng.integers(0, 6)), height * width // 2)
    if n == 0:
        return ""
    cuts = np.sort(rng.choice(np.arange(1, height * width + 1), size=2 * n, replace=False))
    return " ".join(f"{a} {b - a}" for a, b in zip(cuts[0::2], cuts[1::2]))


def make_manifest(tmp_path, n=120, seed=0):
    """A manifest whose names need CSV quoting now and then, and its masks (a few None: empty)."""
    rng = np.random.default_rng(seed)
    names = [f"car{i:03d}_{j:02d}.jpg" for i, j in zip(rng.permutation(n), range(n))]
    names[3], names[7], names[11] = "with,comma.jpg", 'with"quote.jpg', "ünïcode.jpg"
    manifest = pd.DataFrame({"img": names, "height": rng.integers(2, 9, n), "width": rng.integers(2, 9, n)})
    write_parquet(manifest, tmp_path / "manifest.parquet")
    codes = [random_rle(rng, h, w) for h, w in zip(manifest["height"], manifest["width"])]
    codes[5] = None
    return manifest, codes


def write_shards(tmp_path, rows, bounds, row_group=5):
    """(img, rle_mask) shards of ``rows`` split at ``bounds``, with small row groups as encode writes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        names, codes = zip(*rows[a:b]) if b > a else ((), ())
        table = pa.table({"img": pa.array(names, pa.string()), "rle_mask": pa.array(codes, pa.string())})
        paths.append(tmp_path / f"shard-{i}.parquet")
        pq.write_table(table, paths[-1], row_group_size=row_group)
    return paths


LAYOUTS = {
    # shards are contiguous blocks of the manifest, as the workflow makes them
    "blocks": lambda n, rng: (list(range(n)), [0, 30, 60, 90, n]),
    # blocks of unequal sizes, listed in another order than the manifest's
    "blocks out of order": lambda n, rng: (list(range(80, n)) + list(range(80)), [0, n - 80, n - 50, n]),
    # every shard holds images from all over the manifest
    "shuffled": lambda n, rng: (rng.permutation(n).tolist(), [0, 17, 50, 51, 99, n]),
    "one shard": lambda n, rng: (rng.permutation(n).tolist(), [0, n]),
}


@pytest.fixture(params=[1024, 7], ids=["slices of 1024", "slices of 7"])
def slice_rows(request, monkeypatch):
    """The merge's slice size: its own, and one that cuts every shard-sized chunk into several slices."""
    from carmask.stages import submission

    monkeypatch.setattr(submission, "_SLICE_ROWS", request.param)
    return request.param


@pytest.mark.parametrize("layout", LAYOUTS)
def test_merge_writes_the_same_bytes_as_concat_then_write(tmp_path, layout, slice_rows):
    manifest, codes = make_manifest(tmp_path)
    order, bounds = LAYOUTS[layout](len(manifest), np.random.default_rng(1))
    rows = [(manifest["img"][i], codes[i]) for i in order]
    paths = write_shards(tmp_path, rows, bounds)
    ours, theirs = tmp_path / "out" / "submission.csv", tmp_path / "ref" / "submission.csv"
    assert merge_shards(paths, tmp_path / "manifest.parquet", str(ours)) == len(manifest)
    concat_then_write(paths, tmp_path / "manifest.parquet", str(theirs))
    assert ours.read_bytes() == theirs.read_bytes()
    assert b'"with,comma.jpg"' in ours.read_bytes() and b'"with""quote.jpg"' in ours.read_bytes()
    assert not list((tmp_path / "out").glob(".tmp-*"))


def test_merge_reads_each_row_group_once_when_shards_are_blocks(tmp_path, monkeypatch):
    """Memory is one shard's masks at a time: contiguous shards are read in one pass, row group by row group."""
    import pyarrow.parquet as pq

    manifest, codes = make_manifest(tmp_path)
    n = len(manifest)
    reads = []
    original = pq.ParquetFile.read_row_group

    def counted(self, i, *args, **kwargs):
        reads.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    read_table = pq.read_table

    def whole(source, *args, **kwargs):
        assert "shard-" not in str(source), "read a whole shard at once"
        return read_table(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", whole)  # pandas.read_parquet goes through it too
    paths = write_shards(tmp_path, list(zip(manifest["img"], codes)), [0, 30, 60, 90, n], row_group=7)
    merge_shards(paths, tmp_path / "manifest.parquet", str(tmp_path / "submission.csv"))
    groups = sum(pq.ParquetFile(p).metadata.num_row_groups for p in paths)
    assert len(reads) == groups

    reads.clear()
    shuffled = np.random.default_rng(2).permutation(n)
    paths = write_shards(tmp_path, [(manifest["img"][i], codes[i]) for i in shuffled], [0, 30, 60, 90, n], row_group=7)
    merge_shards(paths, tmp_path / "manifest.parquet", str(tmp_path / "submission.csv"))
    assert len(reads) <= len(paths) * groups  # at worst one pass over the shards per shard-sized chunk


def broken(manifest, codes, case):
    """(rows, shard bounds) of a merge that must fail, by ``case``."""
    rows = list(zip(manifest["img"], codes))
    n = len(rows)
    if case == "missing":
        del rows[40]
    elif case == "duplicate":
        rows.insert(100, rows[10])
    elif case == "extra":
        rows.insert(50, ("not-a-test-photo.jpg", "1 1"))
    elif case == "missing and bad RLE":
        del rows[40]
        rows[3] = (rows[3][0], "5 2 1 1")
    elif case == "many bad RLEs, shuffled":
        for i in range(0, n, 7):  # 18 bad ones: the message lists the first 10 in shard order
            rows[i] = (rows[i][0], "0 3")
        rows = [rows[i] for i in np.random.default_rng(3).permutation(n)]
    elif case == "bad RLE in the last shard":
        rows[-1] = (rows[-1][0], "1 1000")
    return rows, [0, 30, 60, 90, len(rows)]


@pytest.mark.parametrize(
    "case",
    ["missing", "duplicate", "extra", "missing and bad RLE", "many bad RLEs, shuffled", "bad RLE in the last shard"],
)
def test_merge_refuses_what_validate_submission_refuses_and_writes_nothing(tmp_path, case, slice_rows):
    manifest, codes = make_manifest(tmp_path)
    paths = write_shards(tmp_path, *broken(manifest, codes, case))
    out = tmp_path / "out" / "submission.csv"
    with pytest.raises(SubmissionError) as ours:
        merge_shards(paths, tmp_path / "manifest.parquet", str(out))
    with pytest.raises(SubmissionError) as theirs:
        concat_then_write(paths, tmp_path / "manifest.parquet", str(out))
    assert str(ours.value) == str(theirs.value)  # the same problems, listed in the same order
    assert not out.exists() and not list(out.parent.glob(".tmp-*"))


def test_merge_reads_shards_of_every_text_type(tmp_path):
    """The encoder writes string, pandas large_string, an all-empty shard may be null: one chunk spans them all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_parquet(EXPECTED, tmp_path / "manifest.parquet")
    shards = [("b.jpg", "1 1", pa.string()), ("a.jpg", "1 2", pa.large_string()), ("c.jpg", None, pa.null())]
    paths = []
    for i, (img, code, kind) in enumerate(shards):
        paths.append(tmp_path / f"s{i}.parquet")
        pq.write_table(pa.table({"img": [img], "rle_mask": pa.array([code], kind)}), paths[-1])
    out = tmp_path / "submission.csv"
    merge_shards(paths, tmp_path / "manifest.parquet", str(out))
    assert out.read_text() == "img,rle_mask\nb.jpg,1 1\na.jpg,1 2\nc.jpg,\n"


def test_merge_refuses_a_shard_whose_masks_are_not_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_parquet(EXPECTED, tmp_path / "manifest.parquet")
    names = pa.array(["a.jpg", "b.jpg", "c.jpg"])
    pq.write_table(pa.table({"img": names, "rle_mask": pa.array([b"1 2", b"", b""])}), tmp_path / "s0.parquet")
    out = tmp_path / "submission.csv"
    with pytest.raises(SubmissionError, match=r"rle_mask must be text, found binary in .*s0.parquet"):
        merge_shards([tmp_path / "s0.parquet"], tmp_path / "manifest.parquet", str(out))
    assert not out.exists()


def test_merge_refuses_a_shard_with_other_columns(tmp_path):
    write_parquet(EXPECTED, tmp_path / "manifest.parquet")
    write_parquet(pd.DataFrame({"img": ["a.jpg", "b.jpg", "c.jpg"], "mask": ""}), tmp_path / "s0.parquet")
    out = tmp_path / "submission.csv"
    with pytest.raises(SubmissionError, match="header must be 'img,rle_mask', found img,mask"):
        merge_shards([tmp_path / "s0.parquet"], tmp_path / "manifest.parquet", str(out))
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("quoting", ["plain names", "names that need quotes"])
def test_merge_checks_row_by_row_only_the_chunks_it_cannot_vouch_for(tmp_path, monkeypatch, quoting):
    from carmask.stages import submission

    manifest, codes = make_manifest(tmp_path)
    if quoting == "plain names":
        manifest["img"] = [f"car{i:03d}.jpg" for i in range(len(manifest))]
        write_parquet(manifest, tmp_path / "manifest.parquet")
    codes[70] = "1 1\n"  # valid, but csv quotes it: its chunk (rows 60-89) goes row by row
    checked = []
    original = submission._check_rle
    monkeypatch.setattr(submission, "_check_rle", lambda *args: checked.append(args[1]) or original(*args))
    paths = write_shards(tmp_path, list(zip(manifest["img"], codes)), [0, 30, 60, 90, len(manifest)])
    ours, theirs = tmp_path / "out" / "submission.csv", tmp_path / "ref" / "submission.csv"
    merge_shards(paths, tmp_path / "manifest.parquet", str(ours))
    concat_then_write(paths, tmp_path / "manifest.parquet", str(theirs))
    assert ours.read_bytes() == theirs.read_bytes()
    by_row = set(manifest["img"][60:90]) | (set(manifest["img"][:30]) if quoting != "plain names" else set())
    assert set(checked) == by_row


@pytest.mark.parametrize("bad_rows", [0, 1, 25])
def test_validate_submission_says_what_the_row_by_row_check_says(monkeypatch, bad_rows):
    """Over several slices, with empty (NaN) masks, unknown names and bad RLEs among good ones."""
    from carmask.masks import rle_columns

    rng = np.random.default_rng(bad_rows)
    n = 3000
    expected = pd.DataFrame({"img": [f"car{i:04d}.jpg" for i in range(n)], "height": rng.integers(2, 9, n),
                             "width": rng.integers(2, 9, n)})
    codes = [random_rle(rng, h, w) for h, w in zip(expected["height"], expected["width"])]
    frame = sub(list(zip(expected["img"], codes)))
    frame.loc[7, "rle_mask"] = np.nan
    for i in rng.choice(n, bad_rows, replace=False):
        frame.loc[i, "rle_mask"] = ["0 1", "1 0", "1 2 2 1", "1 99", "1 1 1"][i % 5]
    if bad_rows:
        frame.loc[n - 1, "img"] = "not-a-test-photo.jpg"
    if bad_rows == 1:  # bytes, not text: pyarrow would read them as text, the row check refuses them
        frame["rle_mask"] = frame["rle_mask"].astype(object)
        frame.loc[1500, "rle_mask"] = b"1 1"
    messages = []
    for whole_slices in (True, False):
        if not whole_slices:
            monkeypatch.setattr(rle_columns, "all_valid", lambda codes, pixels: False)
        try:
            validate_submission(frame, expected)
            messages.append("valid")
        except SubmissionError as err:
            messages.append(str(err))
    assert messages[0] == messages[1]
    assert (messages[0] == "valid") == (bad_rows == 0)
