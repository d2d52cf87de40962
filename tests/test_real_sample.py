"""The real Carvana sample in ../shared: RLE against Kaggle's ground truth.

Skipped, with the reason, when the sample is not beside the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carmask.masks import rle
from carmask.masks.images import load_mask

from .reference import kaggle_kernel_encode

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "carvana-sample"
pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not (SAMPLE / "train_masks").is_dir(), reason=f"real Carvana sample not found at {SAMPLE}"),
]

# The real train_masks.csv rows as the sample's README prints them: cut at a
# fixed width, so the last number may itself be cut ("88716...").
KAGGLE_PREFIXES = {
    "00087a6bd4dc_01.jpg": "879386 40 881253 141 883140 205 885009 17",
    "00087a6bd4dc_02.jpg": "873779 4 875695 7 877612 9 879528 12 881267 15",
    "00087a6bd4dc_03.jpg": "864300 9 866217 13 868134 15 870051 16 871969",
    "00087a6bd4dc_04.jpg": "879735 20 881650 26 883315 92 883564 30 885208",
    "00087a6bd4dc_05.jpg": "883365 74 883638 28 885262 119 885550 34 88716",
}


@pytest.mark.parametrize("img", sorted(KAGGLE_PREFIXES))
def test_encoding_reproduces_kaggle_train_masks_csv(img):
    mask = load_mask(SAMPLE / "train_masks" / img.replace(".jpg", "_mask.gif"))
    assert mask.shape == (1280, 1918)
    code = rle.encode(mask)
    assert code.startswith(KAGGLE_PREFIXES[img])
    column_major = rle.encode(np.ascontiguousarray(mask.T))
    assert not column_major.startswith(KAGGLE_PREFIXES[img][:12])  # the convention matters


def test_every_real_mask_round_trips():
    paths = sorted((SAMPLE / "train_masks").glob("*_mask.gif"))
    assert len(paths) == 256
    for path in paths:
        mask = load_mask(path)
        assert np.array_equal(rle.decode(rle.encode(mask), mask.shape), mask), path.name
        assert rle.encode(mask) == kaggle_kernel_encode(mask.astype(np.uint8))


def test_merge_follows_the_real_100064_row_order(tmp_path):
    """With Kaggle's real test list, the merged submission has exactly its rows in its order."""
    import pandas as pd

    from carmask.files import write_parquet
    from carmask.stages.submission import merge_shards, read_submission

    sample = pd.read_csv(SAMPLE / "sample_submission.csv")
    assert len(sample) == 100_064
    manifest = pd.DataFrame({"img": sample["img"], "height": 1280, "width": 1918})
    write_parquet(manifest, tmp_path / "test.parquet")
    shuffled = manifest.sample(frac=1, random_state=0)  # shards arrive in any order
    paths = []
    bounds = np.linspace(0, len(shuffled), 17).astype(int)
    for i in range(16):
        part = shuffled.iloc[bounds[i] : bounds[i + 1]]
        paths.append(tmp_path / f"shard-{i}.parquet")
        write_parquet(pd.DataFrame({"img": part["img"], "rle_mask": "1 5 2000 30"}), paths[-1])
    merge_shards(paths, str(tmp_path / "test.parquet"), str(tmp_path / "submission.csv"))
    sub = read_submission(tmp_path / "submission.csv")
    assert sub["img"].tolist() == sample["img"].tolist()
    assert (sub["rle_mask"] == "1 5 2000 30").all()
