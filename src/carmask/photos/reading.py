"""Reading the photos users have: any format Pillow reads, any size, stored sideways, odd colour modes.

Kaggle's photos are all 1918x1280 RGB JPEGs; a dealer's folder holds phone
photos stored sideways with an EXIF orientation tag, PNGs with an alpha
channel, 16-bit scans, grayscale and CMYK JPEGs, and the odd file that is no
photo at all. Every photo becomes one upright 8-bit RGB array here, or one
:class:`PhotoError` that says what is wrong with it, so the batch can report
it and go on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

class PhotoError(Exception):
    """A file that cannot be used as a photo; the message says why."""


def find_photos(root: str | Path) -> list[str]:
    """Every regular file under ``root`` (sub-folders included), as sorted relative POSIX paths.

    Hidden files and folders (``.DS_Store``, ``.carmask``) are left out. Files
    of every other name are listed, images or not, so a file that is no
    photo is reported rather than silently skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"photo folder {root} does not exist or is not a folder")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        found.append(rel.as_posix())
    return sorted(found)


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB of any Pillow mode: 16-bit scaled (not clipped), alpha laid on white, CMYK and palettes converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if img.mode == "F":
        return Image.fromarray(np.clip(np.rint(np.asarray(img)), 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def read_photo(path: str | Path) -> np.ndarray:
    """The photo upright (EXIF orientation applied) as ``uint8`` (H, W, 3); :class:`PhotoError` when it is not one."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise PhotoError("empty file (0 bytes)")
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            return np.asarray(_to_rgb(upright), dtype=np.uint8)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError("not an image Pillow can read") from None
    except Image.DecompressionBombError as err:  # Pillow's guard: over ~179 megapixels
        raise PhotoError(f"too large: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise PhotoError(f"unreadable: {err}") from None
