"""Photos of any shape fit the 3:2 model and their masks come back to the photo's own pixels."""

from __future__ import annotations

import numpy as np
import pytest

from carmask.masks.images import downscale_mask
from carmask.masks.upsample import mean_mask
from carmask.photos.fitting import Placement, canvas, model_input, photo_mask, place

MODEL = (32, 48)  # 3:2


@pytest.mark.parametrize(("photo", "expected"), [
    ((300, 400), Placement((300, 400), (300, 450), left=25)),  # 4:3: widened
    ((300, 300), Placement((300, 300), (300, 450), left=75)),  # square
    ((200, 600), Placement((200, 600), (400, 600), top=100)),  # 3:1 panorama: heightened
    ((1280, 1918), Placement((1280, 1918), (1280, 1920), left=1)),  # Kaggle's own: a pixel from 3:2
])
def test_pad_places_the_photo_in_the_middle_of_a_3_2_canvas(photo, expected):
    assert place(photo, MODEL, "pad") == expected


def test_squeeze_keeps_the_photo_as_its_canvas():
    assert place((300, 300), MODEL, "squeeze") == Placement((300, 300), (300, 300))
    with pytest.raises(ValueError, match="aspect"):
        place((300, 300), MODEL, "stretch")


def test_canvas_repeats_the_border_pixels_and_crop_gives_the_photo_back():
    photo = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    where = place((4, 3), MODEL, "pad")
    full = canvas(photo, where)
    assert full.shape[:2] == where.canvas == (4, 6)
    np.testing.assert_array_equal(where.crop(full), photo)
    np.testing.assert_array_equal(full[:, 0], photo[:, 0])  # left border continued
    np.testing.assert_array_equal(full[:, -1], photo[:, -1])


def test_model_input_has_the_model_size_and_channels():
    full = np.full((300, 450, 3), 90, dtype=np.uint8)
    assert model_input(full, MODEL, 3).shape == (32, 48, 3)
    gray = model_input(full, MODEL, 1)
    assert gray.shape == (32, 48, 1) and (gray == 90).all()


def ellipse(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((y - height * 0.55) / (height * 0.3)) ** 2 + ((x - width * 0.5) / (width * 0.35)) ** 2 < 1


@pytest.mark.parametrize("aspect", ["pad", "squeeze"])
@pytest.mark.parametrize("photo", [(600, 800), (500, 500), (640, 960)])
def test_a_perfect_model_size_map_comes_back_to_the_photos_mask(photo, aspect):
    """A model that saw the exact coverage of each of its pixels gives the photo's mask back to within the resolution ceiling."""
    truth = ellipse(*photo)
    where = place(photo, (96, 144), aspect)
    padded = canvas(truth[..., None], where)[..., 0]
    probs = downscale_mask(padded, (96, 144))
    mask = photo_mask(probs, where, 0.5)
    assert mask.shape == photo
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.995


def test_photo_mask_is_the_bilinear_mask_of_the_canvas_cropped():
    rng = np.random.default_rng(0)
    probs = rng.integers(0, 256, (32, 48), dtype=np.uint8)
    where = place((90, 100), MODEL, "pad")
    np.testing.assert_array_equal(photo_mask(probs, where, 0.5), where.crop(mean_mask([probs], [1.0], where.canvas, 0.5)))


def test_refined_photo_mask_keeps_the_photo_size_and_follows_the_edge():
    photo = (240, 360)
    truth = ellipse(*photo)
    full = np.where(truth[..., None], 40, 220).astype(np.uint8).repeat(3, axis=2)
    where = place(photo, MODEL, "pad")
    probs = downscale_mask(truth, MODEL)
    plain, refined = photo_mask(probs, where, 0.5), photo_mask(probs, where, 0.5, full=canvas(full, where))
    assert refined.shape == photo
    assert (refined != truth).sum() <= (plain != truth).sum()
