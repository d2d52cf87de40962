"""What the workflow watches: data-folder fingerprints and the package code each rule imports."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from carmask.planning import tracking
from carmask.planning.layout import SIDES
from carmask.planning.tracking import code_digest, code_files, data_fingerprint

ROOT = Path(__file__).resolve().parents[2]
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


def names(script: str) -> set[str]:
    """The package files ``script`` imports, as paths inside the package."""
    return {Path(p).relative_to(tracking.PACKAGE_DIR).as_posix() for p in code_files(SCRIPTS / f"{script}.py")}


def test_code_files_follow_imports_at_any_depth():
    # encode -> stages.encode -> masks.block_rle, probability_maps, rle, refine -> upsample, ...; each
    # sub-package's __init__ runs on import, so it is part of the code too
    assert names("encode") == {"__init__.py", "files.py", "logs.py", "masks/__init__.py", "masks/upsample.py",
                               "masks/block_rle.py", "masks/probability_maps.py", "masks/rle.py", "masks/refine.py",
                               "stages/__init__.py", "stages/encode.py", "stages/threshold.py"}
    # train imports the architectures and losses inside its function: still followed
    assert {"network/training.py", "network/architectures.py", "network/losses.py", "network/datasets.py",
            "masks/images.py", "network/runtime.py"} <= names("train")
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in code_files(SCRIPTS / "train.py"))


@pytest.mark.parametrize(
    "module, reruns, keeps",
    [
        # demo_data imports rle too (it writes the demo's train_masks.csv): on the demo
        # data an rle.py edit regenerates it; the README says so
        ("masks/rle.py", {"encode", "evaluate", "merge", "demo_data"}, {"train", "predict", "manifest", "split"}),
        # predict rebuilds the architecture to compute in another precision
        ("network/architectures.py", {"train", "predict"}, {"manifest", "split", "encode", "demo_data"}),
        ("network/inference.py", {"predict"}, {"train", "encode", "evaluate"}),
        # the learned refinement: its training, and the encode jobs that use it (a script of their own)
        ("network/refiner.py", {"train_refiner", "encode_learned", "cut_out_photos"}, {"encode", "predict", "train", "evaluate"}),
        ("masks/upsample.py", {"encode", "encode_learned", "train_refiner"}, {"train", "predict", "split"}),
        ("planning/tracking.py", set(), {"manifest", "split", "train", "predict", "encode", "merge", "demo_data"}),
    ],
)
def test_each_module_reaches_the_rules_that_use_it_and_no_others(module, reruns, keeps):
    assert all(module in names(s) for s in reruns)
    assert not any(module in names(s) for s in keeps)


def test_digest_follows_content_not_file_times(tmp_path, monkeypatch):
    copy = tmp_path / "carmask"
    shutil.copytree(tracking.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(tracking, "PACKAGE_DIR", copy)
    encode, train = SCRIPTS / "encode.py", SCRIPTS / "train.py"
    before = code_digest(encode), code_digest(train)
    rle = copy / "masks" / "rle.py"
    os.utime(rle, (0, 0))  # touched: no change
    assert (code_digest(encode), code_digest(train)) == before
    rle.write_text(rle.read_text() + "\n# an edit\n")
    assert code_digest(encode) != before[0] and code_digest(train) == before[1]


def test_imports_the_tracker_cannot_follow_are_errors(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("from .helpers import thing\n")
    with pytest.raises(ValueError, match="relative import"):
        code_files(script)
    script.write_text("from carmask.nothing_here import thing\n")
    with pytest.raises(ValueError, match="not a module file"):
        code_files(script)
    # modules reached as attributes, or named at run time: no module could be listed
    for code, message in (
        ("import carmask\ncarmask.masks.rle.encode\n", "is a package"),
        ("import os, carmask\n", "is a package"),
        ("from carmask import masks\nmasks.rle.encode\n", "is a package"),
        ("import carmask.masks\n", "is a package"),
        ("import importlib\nimportlib.import_module('carmask.masks.rle')\n", "import_module"),
        ("from importlib import import_module\nimport_module('carmask.' + 'rle')\n", "import_module"),
        ("def f():\n    return __import__('carmask.masks.rle')\n", "__import__"),
    ):
        script.write_text(code)
        with pytest.raises(ValueError, match=message):
            code_files(script)
    script.write_text("import carmask.masks.rle as rle\nfrom carmask import files\nfrom carmask.masks.dice import dice\n")
    assert {Path(f).relative_to(tracking.PACKAGE_DIR).as_posix() for f in code_files(script)} == {
        "__init__.py", "files.py", "masks/__init__.py", "masks/rle.py", "masks/dice.py", "masks/images.py", "masks/upsample.py"}


def test_the_digest_holds_the_scripts_content_not_its_mtime(tmp_path):
    script = tmp_path / "encode.py"
    shutil.copy(SCRIPTS / "encode.py", script)
    before = code_digest(script)
    os.utime(script, (0, 0))  # touched, or restored with an old mtime: no change
    assert code_digest(script) == before
    script.write_text(script.read_text() + "\n# an edit\n")
    assert code_digest(script) != before


def test_every_rule_tracks_the_code_of_its_own_script():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    blocks = re.split(r"^(?=(?:rule|checkpoint) )", text, flags=re.M)[1:]
    scripts = set()
    for block in blocks:
        params = block.split("\n    params:\n", 1)[-1] if "\n    params:\n" in block else ""
        chosen = re.search(r'script:\n\s+f"\.\./scripts/\{(\w+)\}\.py"', block)
        if chosen is not None:  # a script picked while planning: both choices, and its digest
            names = re.search(rf'^{chosen.group(1)} = "(\w+)" if \w+ else "(\w+)"$', text, flags=re.M)
            scripts.update(names.groups())
            assert f"code=code({chosen.group(1)})" in params.split("\n    script:")[0], block.splitlines()[0]
            continue
        script = re.search(r'script:\n\s+"\.\./scripts/(\w+)\.py"', block)
        if script is None:
            continue
        scripts.add(script.group(1))
        assert f'code=code("{script.group(1)}")' in params.split("\n    script:")[0], block.splitlines()[0]
    assert scripts == {p.stem for p in SCRIPTS.glob("*.py")}


def test_untracked_checkout_warns_about_a_second_copy(tmp_path):
    assert tracking.untracked_checkout(tmp_path) is None  # no src/ there: nothing to compare
    (tmp_path / "src" / "carmask").mkdir(parents=True)
    assert "pip install -e" in tracking.untracked_checkout(tmp_path)
    assert tracking.untracked_checkout(tracking.PACKAGE_DIR.parents[1]) is None  # the editable install's checkout


#: What the workflow may import when it is planned: the standard library and these.
PARSE_TIME_MODULES = {"carmask.planning.layout", "carmask.planning.tracking", "carmask.planning.settings"}
BLOCKER = '''
import sys

class Blocker:
    """Refuse the packages a Snakemake process need not have (with --sdm conda, say)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"numpy", "PIL", "pandas", "pyarrow", "tensorflow", "keras", "matplotlib", "yaml"}:
            raise ImportError(f"{name} is not available at parse time")
        return None

sys.meta_path.insert(0, Blocker())
'''


def test_the_workflow_imports_only_the_standard_library_when_it_is_planned():
    import subprocess
    import sys

    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))])
    imported = set(re.findall(r"^\s*from (carmask(?:\.\w+)*) import", text, re.M))
    imported |= set(re.findall(r"^\s*import (carmask(?:\.\w+)*)", text, re.M))
    assert imported and imported <= PARSE_TIME_MODULES, f"the workflow imports {sorted(imported - PARSE_TIME_MODULES)} at parse time"
    code = BLOCKER + "".join(f"import {m}\n" for m in sorted(PARSE_TIME_MODULES)) + "print('ok')\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    # the blocker does block: a module that needs numpy fails under it
    proc = subprocess.run([sys.executable, "-c", BLOCKER + "import carmask.masks.upsample\n"], capture_output=True, text=True)
    assert proc.returncode != 0 and "not available at parse time" in proc.stderr
