"""Masks, cutouts and composites: what the user gets back, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from carmask.photos.outputs import alpha, background_image, car_box, check_background, composite, cutout


def square_mask(size: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[10:30, 10:30] = True
    return mask


def test_hard_alpha_is_the_mask():
    np.testing.assert_array_equal(alpha(square_mask()), square_mask().astype(np.uint8) * 255)


def test_soft_edge_is_a_ramp_across_the_outline_only():
    soft = alpha(square_mask(), soft_edge=3)
    assert soft[20, 20] == 255 and soft[0, 0] == 0  # far inside and outside: unchanged
    row = soft[20, 4:17].astype(int)
    assert (np.diff(row) >= 0).all()  # rising across the left edge
    assert 0 < soft[20, 9] < 255 and 0 < soft[20, 10] < 255  # the outline is softened on both sides


def test_cutout_and_composite():
    photo = np.full((40, 40, 3), 77, dtype=np.uint8)
    car = cutout(photo, square_mask())
    rgba = np.asarray(car)
    assert car.mode == "RGBA" and rgba[20, 20, 3] == 255 and rgba[0, 0, 3] == 0
    scene = np.asarray(composite(car, "#ff0000"))
    np.testing.assert_array_equal(scene[20, 20], [77, 77, 77])
    np.testing.assert_array_equal(scene[0, 0], [255, 0, 0])


def test_background_from_an_image_is_resized(tmp_path):
    from PIL import Image

    Image.new("RGB", (10, 10), (0, 255, 0)).save(tmp_path / "bg.png")
    assert background_image(str(tmp_path / "bg.png"), (30, 20)).size == (30, 20)
    with pytest.raises(ValueError, match="neither a colour nor an image"):
        check_background("no-such-colour")


def test_car_box_grows_by_the_margin_and_stays_in_the_photo():
    assert car_box(square_mask(), 0.0) == (10, 10, 30, 30)
    assert car_box(square_mask(), 0.25) == (5, 5, 35, 35)
    assert car_box(square_mask(), 1.0) == (0, 0, 40, 40)
    assert car_box(np.zeros((5, 5), dtype=bool), 0.1) is None
