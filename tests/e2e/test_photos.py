"""End to end: the photos target cuts a user's folder out with the run's model, like the command does."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.cli import main

from ..snakemake_runs import copy_workflow, planned_jobs
from .conftest import snakemake

pytestmark = pytest.mark.e2e


def user_folder(run, root):
    """Three of the run's test photos as a user keeps them, and a file that is no photo."""
    tests = sorted((run / "results/demo/test").glob("*.jpg"))[:3]
    (root / "lot").mkdir(parents=True)
    shutil.copy(tests[0], root / "front.jpg")
    Image.open(tests[1]).save(root / "lot" / "side.png")
    sideways = Image.open(tests[2]).transpose(Image.Transpose.ROTATE_270)
    exif = sideways.getexif()
    exif[0x0112] = 8  # shown rotated back: upright
    sideways.save(root / "lot" / "IMG_0001.JPG", exif=exif, quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 half an upload")


def masks_of(out):
    return {p.relative_to(out).as_posix(): np.asarray(Image.open(p)) for p in sorted((out / "masks").rglob("*.png"))}


def test_the_photos_target_cuts_out_a_folder_with_the_runs_model(finished_run, tmp_path):
    work = copy_workflow(tmp_path / "w")
    shutil.copytree(finished_run / "results", work / "results")
    shutil.copytree(finished_run / ".snakemake", work / ".snakemake", ignore=shutil.ignore_patterns("locks", "incomplete"))
    photos, out = tmp_path / "photos", tmp_path / "out"
    user_folder(finished_run, photos)
    config = tmp_path / "photos.yaml"
    config.write_text(f"photos: {{dir: {photos}, out: {out}, shards: 2, trim: 0.05}}\n")
    overrides = (str(config),)

    planned = planned_jobs(snakemake(work, "-n", "photos", overrides=overrides))
    assert planned == {"list_photos": 1, "cut_out_photos": 2, "summarise_photos": 1, "photos": 1}  # nothing retrains
    snakemake(work, "photos", overrides=overrides)
    table = pd.read_csv(out / "photos.csv", keep_default_na=False).set_index("photo")
    assert table["status"].to_dict() == {"broken.jpg": "failed", "front.jpg": "ok", "lot/IMG_0001.JPG": "ok", "lot/side.png": "ok"}
    masks = masks_of(out)
    assert set(masks) == {"masks/front.png", "masks/lot/side.png", "masks/lot/IMG_0001.png"}
    assert masks["masks/lot/IMG_0001.png"].shape == (128, 192)  # the demo's 192x128 photo, upright again
    assert planned_jobs(snakemake(work, "-n", "photos", overrides=overrides)) == {}

    # The command with the run's results/ gives the same masks.
    assert main(["cutout", "--model", str(work / "results"), str(photos), str(tmp_path / "by-command"), "--trim", "0.05"]) == 1
    for name, mask in masks_of(tmp_path / "by-command").items():
        assert (mask != masks[name]).mean() < 1e-3, name

    # A new photo relists the folder; the photos already done are not redone.
    before = {p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.png")}
    shutil.copy(photos / "front.jpg", photos / "lot" / "rear.jpg")
    planned = planned_jobs(snakemake(work, "-n", "photos", overrides=overrides))
    assert planned.get("list_photos") == 1 and "train" not in planned and "predict" not in planned
    snakemake(work, "photos", overrides=overrides)
    assert (out / "masks" / "lot" / "rear.png").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
