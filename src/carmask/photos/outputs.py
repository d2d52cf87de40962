"""What a user gets back for each photo: the mask, the cutout, a composite on a new background.

The cutout is an RGBA PNG at the photo's size whose alpha is the mask
(optionally feathered: a soft edge of a few pixels hides the staircase a
hard mask leaves on a new background); the composite lays the cutout on a
colour or an image. Both may be trimmed to the car plus a margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageFilter


def background_image(spec: str, size: tuple[int, int]) -> Image.Image:
    """An RGB background of ``size`` (W, H) from a colour (name or #hex) or an image path."""
    try:
        return Image.new("RGB", size, ImageColor.getrgb(spec))
    except ValueError:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"background {spec!r} is neither a colour nor an image file") from None
        with Image.open(path) as img:
            return img.convert("RGB").resize(size, Image.BICUBIC)


def check_background(spec: str) -> None:
    """Fail early, before any photo is predicted, when ``spec`` is neither a colour nor an image."""
    background_image(spec, (1, 1))


def alpha(mask: np.ndarray, soft_edge: int = 0) -> np.ndarray:
    """``uint8`` alpha of a bool mask: 255 car, 0 background, a linear ramp ``2 * soft_edge + 1`` pixels wide across the outline."""
    hard = mask.astype(np.uint8) * 255
    if soft_edge <= 0:
        return hard
    return np.asarray(Image.fromarray(hard, mode="L").filter(ImageFilter.BoxBlur(soft_edge)), dtype=np.uint8)


def cutout(photo: np.ndarray, opacity: np.ndarray) -> Image.Image:
    """RGBA image: the photo, transparent where ``opacity`` (bool mask or ``uint8`` alpha) says background."""
    a = opacity.astype(np.uint8) * 255 if opacity.dtype == bool else opacity
    return Image.fromarray(np.dstack([photo, a]), mode="RGBA")


def composite(car: Image.Image, background: str) -> Image.Image:
    """The RGBA cutout laid on ``background`` (a colour, or an image resized to it)."""
    scene = background_image(background, car.size)
    scene.paste(car, (0, 0), car)
    return scene


def car_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """The car's bounding box (left, top, right, bottom) grown by ``margin`` of its larger side, within the photo; None without car."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    pad = round(margin * max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))
    height, width = mask.shape
    return (max(0, cols[0] - pad), max(0, rows[0] - pad), min(width, cols[-1] + 1 + pad), min(height, rows[-1] + 1 + pad))
