"""Submission validation and merge order."""

import pandas as pd
import pytest

from carmask.files import write_parquet
from carmask.submission import SubmissionError, gzip_file, merge_shards, read_submission, validate_submission

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

    from carmask.submission import choose_best, read_choice

    paths = {}
    for name, dice in (("b", 0.97), ("a", 0.98), ("c", 0.98)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps({"dice_mean": dice}))
    assert choose_best(paths, tmp_path / "best.txt") == "a"  # ties go to the first name
    assert read_choice(tmp_path / "best.txt") == "a"
