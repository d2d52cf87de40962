"""Encode stage: model-size probabilities to full-size masks to Kaggle RLE.

Per image: bilinear upsampling to the photo's own size from the manifest,
threshold, RLE. Streaming, so a job's memory is one batch of probabilities
plus one full-size mask, whatever the shard size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from carmask import files, rle
from carmask.images import probs_to_mask
from carmask.logs import Progress
from carmask.predictions import read_probabilities

log = logging.getLogger(__name__)

#: Columns of an RLE shard file, and images per row group.
RLE_SCHEMA = pa.schema([("img", pa.string()), ("rle_mask", pa.string())])
RLE_ROW_GROUP = 1024


def iter_rle(pred_path: str | Path, sizes: dict[str, tuple[int, int]], threshold: float) -> Iterator[tuple[str, str]]:
    """Yield (img, rle) for every prediction in ``pred_path``.

    ``sizes`` maps image name to its full (height, width).
    """
    for img, probs in read_probabilities(pred_path):
        try:
            size = sizes[img]
        except KeyError:
            raise ValueError(f"{pred_path}: prediction for {img}, which is not in the manifest") from None
        yield img, rle.encode(probs_to_mask(probs, size, threshold))


def encode_shard(pred_path: str, items_path: str, out_path: str, threshold: float) -> None:
    """Encode one predictions shard into an (img, rle_mask) parquet file."""
    items = pd.read_parquet(items_path, columns=["img", "height", "width"])
    sizes = dict(zip(items["img"], zip(items["height"].tolist(), items["width"].tolist())))
    total = pq.ParquetFile(pred_path).metadata.num_rows
    progress = Progress(total, "encoded", log)
    with files.atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, RLE_SCHEMA, compression="zstd") as writer:
        names: list[str] = []
        codes: list[str] = []
        for img, code in iter_rle(pred_path, sizes, threshold):
            names.append(img)
            codes.append(code)
            progress.update()
            if len(names) >= RLE_ROW_GROUP:
                writer.write_table(pa.table([names, codes], schema=RLE_SCHEMA))
                names, codes = [], []
        writer.write_table(pa.table([names, codes], schema=RLE_SCHEMA))
