"""Cut cars out of their photos and put them on another background.

This is what the masks are for: Carvana wants every car on any background.
A few test photos of the run, cut out with their submitted masks, to look
at in the report (:mod:`carmask.photos.outputs` makes the images; a folder of
any photos goes through :mod:`carmask.photos.batch`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from carmask import files
from carmask.masks import rle
from carmask.masks.images import load_image
from carmask.photos.outputs import composite, cutout

log = logging.getLogger(__name__)


def make_cutouts(
    rle_paths: Sequence[str], manifest_path: str, n_images: int, background: str, cutout_dir: str, composite_dir: str
) -> list[str]:
    """Write cutouts and composites of the first ``n_images`` images by name."""
    items = pd.read_parquet(manifest_path).sort_values("img").head(n_images)
    codes = pd.concat([pd.read_parquet(p) for p in rle_paths]).set_index("img")["rle_mask"]
    with files.atomic_dir(cutout_dir) as cut_tmp, files.atomic_dir(composite_dir) as comp_tmp:
        for item in items.to_dict("records"):
            photo = load_image(item["image_path"])
            mask = rle.decode(codes[item["img"]], photo.shape[:2])
            car = cutout(photo, mask)
            stem = Path(item["img"]).stem
            car.save(cut_tmp / f"{stem}.png", optimize=False)
            composite(car, background).save(comp_tmp / f"{stem}.jpg", quality=92)
            log.info("cut out %s (%.1f%% car)", item["img"], 100 * mask.mean())
    return items["img"].tolist()
