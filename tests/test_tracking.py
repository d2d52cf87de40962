"""What the workflow watches: data-folder fingerprints and the package code each rule imports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carmask.manifest import SIDES
from carmask.tracking import code_files, data_fingerprint

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


@pytest.fixture
def folder(tmp_path):
    for sub in ("train", "train_masks", "test"):
        (tmp_path / sub).mkdir()
    (tmp_path / "train" / "a_01.jpg").write_bytes(b"photo")
    (tmp_path / "train_masks" / "a_01_mask.gif").write_bytes(b"mask")
    (tmp_path / "test" / "b_01.jpg").write_bytes(b"photo")
    (tmp_path / "sample_submission.csv").write_text("img,rle_mask\nb_01.jpg,1 1\n")
    return tmp_path


def fingerprints(folder):
    return {side: data_fingerprint(folder, parts) for side, parts in SIDES.items()}


def test_a_change_on_one_side_changes_only_that_sides_fingerprint(folder):
    before = fingerprints(folder)
    assert before == fingerprints(folder)  # stable
    (folder / "test" / "c_01.jpg").write_bytes(b"new photo")
    after_test = fingerprints(folder)
    assert after_test["test"] != before["test"] and after_test["train"] == before["train"]

    mask = folder / "train_masks" / "a_01_mask.gif"
    st = mask.stat()
    mask.write_bytes(b"MASK")  # same size, rewritten in place
    os.utime(mask, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    after_mask = fingerprints(folder)
    assert after_mask["train"] != after_test["train"] and after_mask["test"] == after_test["test"]


def test_sample_submission_rewritten_in_place_counts(folder):
    before = fingerprints(folder)
    with open(folder / "sample_submission.csv", "a") as f:
        f.write("c_01.jpg,1 1\n")
    assert fingerprints(folder)["test"] != before["test"]


def test_removed_files_and_missing_parts_count_and_litter_does_not(folder):
    before = fingerprints(folder)
    for junk in (".DS_Store", "Thumbs.db", "._a_01.jpg"):
        (folder / "train" / junk).write_bytes(b"junk")
    assert fingerprints(folder) == before
    (folder / "train" / "a_01.jpg").unlink()
    assert fingerprints(folder)["train"] != before["train"]
    (folder / "sample_submission.csv").unlink()
    assert fingerprints(folder)["test"] != before["test"]
    assert data_fingerprint(folder / "nowhere", SIDES["test"]) == data_fingerprint(folder / "elsewhere", SIDES["test"])


def names(script: str) -> set[str]:
    return {Path(p).name for p in code_files(SCRIPTS / f"{script}.py")}


def test_code_files_follow_imports_at_any_depth():
    # encode -> carmask.encode -> predictions, images, rle, io, logs
    assert names("encode") == {"__init__.py", "encode.py", "predictions.py", "images.py", "rle.py", "io.py", "logs.py"}
    # train imports models and losses inside its function: still followed
    assert {"train.py", "models.py", "losses.py", "data.py", "images.py", "runtime.py"} <= names("train")
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in code_files(SCRIPTS / "train.py"))


@pytest.mark.parametrize(
    "module, reruns, keeps",
    [
        ("rle.py", {"encode", "evaluate", "merge"}, {"train", "predict", "manifest", "split"}),
        ("models.py", {"train"}, {"manifest", "split", "encode"}),
        ("predict.py", {"predict"}, {"train", "encode"}),
    ],
)
def test_each_module_reaches_exactly_the_rules_that_use_it(module, reruns, keeps):
    assert all(module in names(s) for s in reruns)
    assert not any(module in names(s) for s in keeps)


def test_every_rule_script_is_tracked():
    rules = (ROOT / "workflow" / "rules").glob("*.smk")
    text = "\n".join(p.read_text() for p in rules)
    for script in SCRIPTS.glob("*.py"):
        assert f'code=code("{script.stem}")' in text, f"no rule lists the package code of {script.name}"
