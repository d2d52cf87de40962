"""The ``photos`` target: a user's folder of photos through the run's model, sharded like the test set.

The folder is listed once, each shard job cuts out its contiguous block of
photos (:func:`carmask.photos.batch.cut_out_photos`, resuming from its own
journal when an earlier job was stopped), and the shards' rows are merged
into the folder's ``photos.csv``. The photo files go straight to the output
folder; Snakemake tracks the listing, the shards' rows and the summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from carmask import files
from carmask.network.inference import shard_rows
from carmask.photos.batch import COLUMNS, Options, cut_out_photos, list_folder, write_summary
from carmask.photos.card import load_card


def list_photos(photos_dir: str | Path | None, out_dir: str | Path, out: str | Path) -> int:
    """Write the sorted relative paths of every file in the folder (:func:`list_folder`); the count."""
    if photos_dir is None:
        raise ValueError("photos.dir is not set: name the folder of photos in a config layered on config.yaml")
    photos = list_folder(photos_dir, out_dir)
    files.write_parquet(pd.DataFrame({"photo": photos}), out)
    return len(photos)


def options_from_config(block: Mapping[str, Any]) -> Options:
    """The output options of the config's ``photos`` block."""
    return Options(background=block["background"], soft_edge=block["soft_edge"], trim=block["trim"], aspect=block["aspect"])


def cut_out_shard(
    model: str | Path, listing: str | Path, photos_dir: str | Path, out_dir: str | Path, options: Options,
    shard: int, shards: int, rows_out: str | Path, threads: int = 1,
) -> pd.DataFrame:
    """Cut out shard ``shard`` of ``shards`` of the listed photos; write its rows (parquet) atomically."""
    photos = shard_rows(pd.read_parquet(listing), shard, shards)["photo"].tolist()
    journal = Path(out_dir) / ".carmask" / f"journal-shard-{shard}-of-{shards}.jsonl"
    table = cut_out_photos(load_card(model), photos_dir, out_dir, photos, options, journal, threads)
    files.write_parquet(table, rows_out)
    return table


def merge_rows(paths: Sequence[str | Path], out: str | Path) -> pd.DataFrame:
    """The shards' rows in listing order as the folder's CSV."""
    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)[COLUMNS]
    write_summary(table, out)
    return table
