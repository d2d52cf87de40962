"""Fitting a photo of any shape to the model's input, and its mask back to the photo.

The models see 3:2 photos (Kaggle's 1918x1280). A 4:3 phone photo or a
square crop either is squeezed to 3:2 (the car gets narrower than any car
the model trained on) or is padded to 3:2 with its own border pixels
continued outwards (the car keeps its shape; the model sees a little more
wall and floor). Which is better was measured on real cars re-cropped to
4:3 and 1:1 (docs/user-photos.md); :data:`DEFAULT_ASPECT` is the winner.
Either way the model's probabilities come back to the photo's own pixels
with the same bilinear upsampling as the submission's masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from carmask.masks.refine import BandRefiner, refined_mask
from carmask.masks.upsample import mean_mask


#: ``pad``: continue the photo's border pixels to 3:2; ``squeeze``: resize it to 3:2 regardless.
ASPECTS = ("pad", "squeeze")
DEFAULT_ASPECT = "pad"


@dataclass(frozen=True)
class Placement:
    """Where a (height, width) photo sits in the full-size canvas the model sees."""

    photo: tuple[int, int]
    canvas: tuple[int, int]
    top: int = 0
    left: int = 0

    def crop(self, canvas_array: np.ndarray) -> np.ndarray:
        """The photo's part of an array over the canvas."""
        return canvas_array[self.top : self.top + self.photo[0], self.left : self.left + self.photo[1]]


def place(photo: tuple[int, int], model: tuple[int, int], aspect: str) -> Placement:
    """The canvas for a photo of size ``photo`` given a model of input ``model`` (both (height, width))."""
    if aspect not in ASPECTS:
        raise ValueError(f"aspect is {aspect!r}; it must be one of {', '.join(ASPECTS)}")
    height, width = photo
    if aspect == "squeeze":
        return Placement(photo, photo)
    ratio = model[1] / model[0]
    if width < height * ratio:  # taller than the model's shape: widen
        canvas_width = max(width, round(height * ratio))
        return Placement(photo, (height, canvas_width), left=(canvas_width - width) // 2)
    canvas_height = max(height, round(width / ratio))
    return Placement(photo, (canvas_height, width), top=(canvas_height - height) // 2)


def canvas(photo: np.ndarray, where: Placement) -> np.ndarray:
    """The photo padded to its canvas with its border pixels repeated outwards."""
    if where.canvas == where.photo:
        return photo
    bottom = where.canvas[0] - where.photo[0] - where.top
    right = where.canvas[1] - where.photo[1] - where.left
    return np.pad(photo, ((where.top, bottom), (where.left, right), (0, 0)), mode="edge")


def model_input(full: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """The canvas shrunk to ``size`` (height, width): ``uint8`` (h, w, channels), antialiased bilinear."""
    img = Image.fromarray(full)
    if channels == 1:
        img = img.convert("L")
    small = np.asarray(img.resize((size[1], size[0]), Image.BILINEAR, reducing_gap=3.0), dtype=np.uint8)
    return small[..., None] if channels == 1 else small


def photo_mask(probs: np.ndarray, where: Placement, threshold: float, full: np.ndarray | None = None,
               refine_band: BandRefiner | None = None) -> np.ndarray:
    """The photo's full-size bool mask from the model-size ``uint8`` probabilities of its canvas.

    With ``full`` (the RGB canvas) the uncertain band along the outline is
    re-decided by the photo: by ``refine_band``, the learned network
    (:meth:`carmask.network.refiner.Refiner.mask`), or without one by the
    photo's brightness (:func:`carmask.masks.refine.refined_mask`).
    """
    if full is None:
        mask = mean_mask([probs], [1.0], where.canvas, threshold)
    elif refine_band is not None:
        mask = refine_band([probs], [1.0], full, threshold)
    else:
        gray = np.asarray(Image.fromarray(full).convert("L"), dtype=np.float32) / 255.0
        mask = refined_mask([probs], [1.0], gray, threshold)
    return where.crop(mask)
