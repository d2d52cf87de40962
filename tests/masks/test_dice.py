"""Dice and the resolution ceiling, against answers worked out by hand."""

import numpy as np
import pytest

from carmask.masks.dice import ceiling_dice, dice


def m(rows):
    return np.array(rows, dtype=bool)


def test_dice_hand_cases():
    a = m([[1, 1, 0], [0, 1, 0], [0, 0, 0]])  # 3 pixels
    b = m([[1, 0, 0], [0, 1, 1], [0, 0, 0]])  # 3 pixels, 2 shared
    assert dice(a, b) == pytest.approx(2 * 2 / 6)
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0
    empty = np.zeros((3, 3), bool)
    assert dice(empty, empty) == 1.0  # Kaggle: both empty counts as 1
    assert dice(a, empty) == 0.0


def test_dice_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        dice(np.zeros((2, 2), bool), np.zeros((3, 3), bool))


def test_ceiling_of_representable_mask_is_one():
    truth = np.zeros((64, 96), bool)
    truth[16:48, :] = True  # a band with edges on the 4x grid: exact at 16x24
    assert ceiling_dice(truth, (16, 24), 0.5) == 1.0
    # a rectangle loses its four corner pixels to bilinear upsampling (159*159/255 < 128)
    box = np.zeros((64, 96), bool)
    box[16:48, 24:72] = True
    assert ceiling_dice(box, (16, 24), 0.5) == pytest.approx(2 * (1536 - 4) / (1536 + 1536 - 4))


def test_ceiling_of_unrepresentable_mask():
    truth = np.zeros((64, 96), bool)
    truth[::2, ::2] = True  # a checkerboard of single pixels: no 16x24 map holds it
    ceiling = ceiling_dice(truth, (16, 24), 0.5)
    # every small pixel is 25% car: nothing passes 0.5, so the prediction is empty
    assert ceiling == 0.0


def test_ceiling_grows_with_size():
    yy, xx = np.mgrid[:640, :959]
    truth = ((yy - 320) / 250) ** 2 + ((xx - 480) / 400) ** 2 < 1
    low = ceiling_dice(truth, (20, 30), 0.5)
    high = ceiling_dice(truth, (160, 240), 0.5)
    assert 0.9 < low < high < 1.0
