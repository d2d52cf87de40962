"""A folder of the photos users have (the tiny model they go through: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def car_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A dark blob on a light, slightly noisy studio: something with an outline."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    blob = ((y - height * 0.6) / (height * 0.25)) ** 2 + ((x - width * 0.5) / (width * 0.3)) ** 2 < 1
    img = np.where(blob[..., None], [60, 40, 30], [225, 225, 220]) + rng.normal(0, 6, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_user_folder(root: Path) -> dict[str, str]:
    """Every kind of file a user's folder holds; returns name -> what it is."""
    kinds = {}

    def save(name: str, img: Image.Image, what: str, **kwargs) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / name, **kwargs)
        kinds[name] = what

    rgb = Image.fromarray(car_photo(120, 180))
    sideways = Image.fromarray(car_photo(90, 120, 1)).transpose(Image.Transpose.ROTATE_90)
    exif = sideways.getexif()
    exif[0x0112] = 6
    save("IMG_0042.JPG", sideways, "exif-rotated 4:3 JPEG", exif=exif, quality=90)
    save("kaggle.jpg", rgb, "3:2 JPEG", quality=90)
    save("lot/front.png", Image.fromarray(car_photo(100, 100, 2)), "square PNG in a sub-folder")
    save("lot/deeper/odd.webp", Image.fromarray(car_photo(77, 133, 3)), "odd-size WebP", lossless=True)
    save("print.jpg", rgb.convert("CMYK"), "CMYK JPEG", quality=90)
    save("bw.jpg", rgb.convert("L"), "grayscale JPEG", quality=90)
    save("scan.png", Image.fromarray((np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)), "16-bit PNG")
    save("alpha.png", rgb.convert("RGBA"), "RGBA PNG")
    (root / "empty.jpg").write_bytes(b"")
    kinds["empty.jpg"] = "empty file"
    (root / "lot" / "notes.txt").write_text("price list")
    kinds["lot/notes.txt"] = "no image"
    return kinds
