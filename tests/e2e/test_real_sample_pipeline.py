"""The real Carvana photos through the real path: data_dir, manifest, split, submission.

Skipped, with the reason, when ../shared/data/carvana-sample is absent.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from carmask.masks import rle
from carmask.stages.submission import read_submission

from ..snakemake_runs import ROOT, copy_workflow
from .conftest import snakemake

SAMPLE = ROOT.parent / "shared" / "data" / "carvana-sample"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.real,
    pytest.mark.skipif(not (SAMPLE / "train_masks").is_dir(), reason=f"real Carvana sample not found at {SAMPLE}"),
]


def kaggle_folder(dest, n_cars: int = 4):
    """A Kaggle-layout folder of links to the real files: n_cars train cars, the real test photo."""
    cars = sorted({p.name[:12] for p in (SAMPLE / "train").glob("*.jpg")})[:n_cars]
    for sub in ("train", "train_masks", "test"):
        (dest / sub).mkdir(parents=True)
    for car in cars:
        for p in (SAMPLE / "train").glob(f"{car}_*.jpg"):
            os.symlink(p, dest / "train" / p.name)
        for p in (SAMPLE / "train_masks").glob(f"{car}_*_mask.gif"):
            os.symlink(p, dest / "train_masks" / p.name)
    test = sorted((SAMPLE / "test").glob("*.jpg"))
    for p in test:
        os.symlink(p, dest / "test" / p.name)
    pd.DataFrame({"img": [p.name for p in test], "rle_mask": "1 1"}).to_csv(dest / "sample_submission.csv", index=False)
    return dest, cars


def test_real_photos_through_the_pipeline(tmp_path):
    data, cars = kaggle_folder(tmp_path / "kaggle")
    work = copy_workflow(tmp_path / "work")
    # tiny.yaml has 2 shards for the one test photo: one shard is empty, which must work too.
    snakemake(work, "results/submission.csv", "--config", f"data_dir={data}")

    train = pd.read_parquet(work / "results/manifest/train.parquet")
    assert len(train) == 16 * len(cars) and set(train["car"]) == set(cars)
    assert (train["width"] == 1918).all() and (train["height"] == 1280).all()
    test = pd.read_parquet(work / "results/manifest/test.parquet")
    assert test["img"].tolist() == ["29bb3ece3180_11.jpg"]

    tr = pd.read_parquet(work / "results/split/train.parquet")
    va = pd.read_parquet(work / "results/split/val.parquet")
    assert set(tr["car"]).isdisjoint(va["car"]) and len(tr) + len(va) == len(train)

    sub = read_submission(work / "results/submission.csv")
    assert sub["img"].tolist() == ["29bb3ece3180_11.jpg"]
    rle.validate(sub["rle_mask"][0], 1280, 1918)
