"""RLE codec: Kaggle's convention, checked against an independent encoder."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from carmask.masks import rle

from ..reference import kaggle_kernel_encode


def reference_encode(mask: np.ndarray) -> str:
    """Pixel-by-pixel walk: the definition, written as plainly as possible."""
    runs, start = [], None
    flat = [bool(v) for v in mask.reshape(-1)]
    for i, v in enumerate(flat + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs += [start + 1, i - start]
            start = None
    return " ".join(map(str, runs))


masks = st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(
    lambda hw: arrays(np.bool_, hw, elements=st.booleans())
)


@settings(max_examples=400, deadline=None)
@given(masks)
def test_round_trip_and_reference(mask):
    code = rle.encode(mask)
    assert code == reference_encode(mask)
    assert np.array_equal(rle.decode(code, mask.shape), mask)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (16, 16), (1280, 1918)])
@pytest.mark.parametrize("kind", ["empty", "full", "first", "last", "row_edges"])
def test_edge_cases(shape, kind):
    mask = np.zeros(shape, bool)
    if kind == "full":
        mask[:] = True
    elif kind == "first":
        mask[0, 0] = True
    elif kind == "last":
        mask[-1, -1] = True
    elif kind == "row_edges":
        mask[:, 0] = True
        mask[:, -1] = True
    code = rle.encode(mask)
    assert code == reference_encode(mask)
    assert np.array_equal(rle.decode(code, shape), mask)


def test_row_major_one_indexed():
    mask = np.zeros((2, 3), bool)
    mask[0, 1] = mask[0, 2] = mask[1, 0] = True  # row 0 col 1 is pixel 2
    assert rle.encode(mask) == "2 3"
    assert rle.encode(np.zeros((2, 3), bool)) == ""


def test_matches_kaggle_kernel_encoder_on_full_size_masks():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:1280, :1918]
    for _ in range(5):
        cy, cx, ry, rx = rng.uniform(200, 1000), rng.uniform(300, 1600), rng.uniform(100, 600), rng.uniform(100, 900)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        assert rle.encode(mask) == kaggle_kernel_encode(mask.astype(np.uint8))


@pytest.mark.parametrize(
    "code, message",
    [
        ("1 2 3", "odd number"),
        ("0 2", "start below 1"),
        ("1 0", "length below 1"),
        ("5 2 3 1", "strictly increasing"),
        ("1 2 3 1", "strictly increasing"),  # touching runs
        ("5 3", "past the image"),
        ("1 x", "non-integer"),
        ("+1 2", "non-integer"),
        ("-1 2", "non-integer"),
        ("1_0 2", "non-integer"),
        ("\u0663 1", "non-integer"),  # an Arabic-Indic three: a digit to Python, not to Kaggle
        ("99999999999999999999 1", "too large"),
        ("2 9223372036854775807", "past the image"),  # start + length would wrap around in int64
        ("1 9223372036854775807 5 1", "past the image"),
    ],
)
def test_validate_rejects(code, message):
    with pytest.raises(rle.RLEError, match=message):
        rle.validate(code, 2, 3)


def test_validate_accepts_last_pixel():
    assert rle.validate("6 1", 2, 3).tolist() == [[6, 1]]
