"""The photos target's stages: list the folder, cut out each shard, merge the rows in listing order."""

from __future__ import annotations

import pandas as pd
import pytest

from carmask.photos.batch import Options
from carmask.stages.photo_folder import cut_out_shard, list_photos, merge_rows

from ..photos.conftest import make_user_folder


def test_listing_needs_a_folder_outside_the_output(tmp_path):
    with pytest.raises(ValueError, match="photos.dir is not set"):
        list_photos(None, tmp_path / "out", tmp_path / "list.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        list_photos(tmp_path / "empty", tmp_path / "out", tmp_path / "list.parquet")
    with pytest.raises(ValueError, match="inside the photo folder"):
        list_photos(tmp_path, tmp_path / "out", tmp_path / "list.parquet")


def test_shards_cover_the_listing_once_and_merge_in_order(tiny_model, tmp_path):
    kinds = make_user_folder(tmp_path / "photos")
    assert list_photos(tmp_path / "photos", tmp_path / "out", tmp_path / "list.parquet") == len(kinds)
    rows = []
    for shard in range(3):
        rows.append(tmp_path / f"rows-{shard}.parquet")
        cut_out_shard(tiny_model, tmp_path / "list.parquet", tmp_path / "photos", tmp_path / "out", Options(),
                      shard=shard, shards=3, rows_out=rows[-1])
    table = merge_rows(rows, tmp_path / "out" / "photos.csv")
    assert table["photo"].tolist() == sorted(kinds)
    assert pd.read_csv(tmp_path / "out" / "photos.csv")["photo"].tolist() == sorted(kinds)
    assert sorted(p.name for p in (tmp_path / "out" / ".carmask").iterdir()) == [
        f"journal-shard-{i}-of-3.jsonl" for i in range(3)
    ]
