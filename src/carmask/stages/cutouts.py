"""Cut cars out of their photos and put them on another background.

This is what the masks are for: Carvana wants every car on any background.
A cutout is an RGBA PNG at the photo's full size whose alpha is the predicted
mask; a composite is that cutout over the configured background (a plain
colour, or an image resized to the photo).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageColor

from carmask import files
from carmask.masks import rle
from carmask.masks.images import load_image

log = logging.getLogger(__name__)


def background_image(spec: str, size: tuple[int, int]) -> Image.Image:
    """An RGB background of ``size`` (W, H) from a colour or an image path."""
    try:
        return Image.new("RGB", size, ImageColor.getrgb(spec))
    except ValueError:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"cutouts.background {spec!r} is neither a colour nor an image file") from None
        with Image.open(path) as img:
            return img.convert("RGB").resize(size, Image.BICUBIC)


def cutout(photo: np.ndarray, mask: np.ndarray) -> Image.Image:
    """RGBA image: the photo where the mask is car, transparent elsewhere."""
    alpha = mask.astype(np.uint8) * 255
    return Image.fromarray(np.dstack([photo, alpha]), mode="RGBA")


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
            scene = background_image(background, car.size)
            scene.paste(car, (0, 0), car)
            scene.save(comp_tmp / f"{stem}.jpg", quality=92)
            log.info("cut out %s (%.1f%% car)", item["img"], 100 * mask.mean())
    return items["img"].tolist()
