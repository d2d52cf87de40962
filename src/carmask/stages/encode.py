"""Encode stage: model-size probabilities to full-size masks to Kaggle RLE.

Per image: bilinear upsampling to the photo's own size from the manifest
(of each model's map, weighted and averaged, for an ensemble), threshold,
optionally the outline's uncertain band re-decided with the photo
(``inference.refine``: a guided filter, or the learned network), RLE.
Without refinement the RLE is found from the upsampling's blocks, without
drawing the full-size mask (:mod:`carmask.masks.block_rle`). Streaming, so a
job's memory is one batch of probabilities per model (plus, when refining,
one full-size photo and mask), whatever the shard size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from carmask import files
from carmask.masks import rle
from carmask.masks.block_rle import mean_mask_rle
from carmask.logs import Progress
from carmask.masks.probability_maps import read_members
from carmask.masks.refine import METHODS, BandRefiner, load_gray, load_rgb, refined_mask
from carmask.stages.threshold import resolve

log = logging.getLogger(__name__)

#: Columns of an RLE shard file, and images per row group.
RLE_SCHEMA = pa.schema([("img", pa.string()), ("rle_mask", pa.string())])
RLE_ROW_GROUP = 1024


def iter_rle(
    pred_paths: Sequence[str | Path],
    weights: Sequence[float],
    sizes: dict[str, tuple[int, int]],
    threshold: float,
    photos: dict[str, str] | None = None,
    refine_band: BandRefiner | None = None,
) -> Iterator[tuple[str, str]]:
    """Yield (img, rle) for every photo of the predictions files ``pred_paths``.

    One file is one model: its bilinear mask. Several are an ensemble: the
    mask of their ``weights``-weighted mean at full size. ``sizes`` maps
    image name to its full (height, width). With ``photos`` (image name to
    its file), the uncertain band along each outline is re-decided with the
    photo: by a guided filter on its brightness (:mod:`carmask.masks.refine`),
    or by ``refine_band`` from its colour (the learned network's
    :meth:`carmask.network.refiner.Refiner.mask`).
    """
    for img, maps in read_members(pred_paths):
        try:
            size = sizes[img]
        except KeyError:
            raise ValueError(f"{pred_paths[0]}: prediction for {img}, which is not in the manifest") from None
        if photos is not None and refine_band is not None:
            yield img, rle.encode(refine_band(maps, weights, load_rgb(photos[img], size), threshold))
        elif photos is not None:
            yield img, rle.encode(refined_mask(maps, weights, load_gray(photos[img], size), threshold))
        else:
            # No full-size mask is drawn: the RLE comes from the blocks (carmask.masks.block_rle).
            yield img, mean_mask_rle(maps, weights, size, threshold)


def encode_shard(
    pred_paths: Sequence[str], weights: Sequence[float], items_path: str, out_path: str, threshold: float,
    refine: str = "none", refine_band: BandRefiner | None = None,
) -> None:
    """Encode one shard (of one model, or of an ensemble's models) into an (img, rle_mask) parquet file.

    ``refine``: ``none``, or ``guided`` or ``learned`` to re-decide each
    outline's uncertain band with the photo (reads every photo at full size);
    ``learned`` takes the trained network's ``refine_band``
    (:meth:`carmask.network.refiner.Refiner.mask`): the rule's script loads
    it, so this stage, and the encode jobs that do not use it, import no
    TensorFlow.
    """
    if refine not in METHODS:
        raise ValueError(f"inference.refine is {refine!r}; it must be one of {', '.join(METHODS)}")
    if (refine == "learned") != (refine_band is not None):
        raise ValueError(f"inference.refine {refine!r} takes a trained refiner exactly when it is 'learned'")
    refined = refine != "none"
    items = pd.read_parquet(items_path, columns=["img", "height", "width", *(["image_path"] if refined else [])])
    sizes = dict(zip(items["img"], zip(items["height"].tolist(), items["width"].tolist())))
    photos = dict(zip(items["img"], items["image_path"])) if refined else None
    total = pq.ParquetFile(pred_paths[0]).metadata.num_rows
    progress = Progress(total, "encoded", log)
    log.info("%d photos from %s, weights %s, threshold %s, refine %s", total, list(pred_paths), list(weights), threshold, refine)
    with files.atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, RLE_SCHEMA, compression="zstd") as writer:
        names: list[str] = []
        codes: list[str] = []
        for img, code in iter_rle(pred_paths, weights, sizes, threshold, photos, refine_band):
            names.append(img)
            codes.append(code)
            progress.update()
            if len(names) >= RLE_ROW_GROUP:
                writer.write_table(pa.table([names, codes], schema=RLE_SCHEMA))
                names, codes = [], []
        writer.write_table(pa.table([names, codes], schema=RLE_SCHEMA))


def encode_job(inputs: Any, params: Any, out_path: str, refine_band: BandRefiner | None = None) -> None:
    """One encode job from the rule's inputs and parameters (both of its scripts, with and without a learned refiner).

    ``inputs`` and ``params`` are the rule's named inputs and parameters
    (Snakemake's, or any mapping): ``predictions`` (one file per member),
    ``manifest`` and, with ``inference.threshold: auto``, ``threshold``;
    ``weights`` (by member), ``threshold`` and ``refine``.
    """
    encode_shard(
        list(inputs["predictions"]), list(params["weights"].values()), inputs["manifest"], out_path,
        threshold=resolve(params["threshold"], inputs.get("threshold")), refine=params["refine"],
        refine_band=refine_band,
    )
