"""The RLE found from the upsampling's blocks, against the mask drawn and scanned, and against plain computations."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from carmask.masks import rle
from carmask.masks.block_rle import mean_mask_rle
from carmask.masks.images import downscale_mask, load_mask
from carmask.masks.upsample import decide_blocks, mean_mask

from ..reference import bilinear, kaggle_kernel_encode
from .test_upsample import smooth_map

SAMPLE_MASKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "carvana-sample" / "train_masks"

LEVELS = [0, 1, 60, 127, 128, 200, 254, 255]
small_map = st.tuples(st.integers(1, 16), st.integers(1, 16)).flatmap(
    lambda hw: arrays(np.uint8, hw, elements=st.sampled_from(LEVELS))
)


def plain_rle(probs: np.ndarray, size: tuple[int, int], threshold: float) -> tuple[str, np.ndarray]:
    """The Kaggle kernel's RLE of every pixel interpolated and cut, and where that cut is not an exact tie."""
    ref = bilinear(probs, size)
    cut = 255 * threshold
    return kaggle_kernel_encode((ref > cut).astype(np.uint8)), np.abs(ref - cut) > 1e-9


@settings(max_examples=400, deadline=None)
@given(
    st.lists(small_map, min_size=1, max_size=3),
    st.lists(st.floats(0.05, 1.0), min_size=3, max_size=3),
    st.tuples(st.integers(1, 90), st.integers(1, 90)),
    st.sampled_from([0.2, 0.3, 0.5, 128 / 255, 0.9]),  # 128/255: the cut exactly on a probability level
)
def test_equals_the_drawn_mask_encoded(maps, raw_weights, size, threshold):
    """Every pair of neighbours is compared once: the same RLE as scanning the whole mask, for one model or several."""
    weights = [w / sum(raw_weights[: len(maps)]) for w in raw_weights[: len(maps)]]
    code = mean_mask_rle(maps, weights, size, threshold)
    assert code == rle.encode(mean_mask(maps, weights, size, threshold))
    rle.validate(code, *size)


@settings(max_examples=200, deadline=None)
@given(small_map, st.tuples(st.integers(1, 90), st.integers(1, 90)), st.sampled_from([0.3, 0.5, 0.9]))
def test_decodes_to_the_plain_bilinear_cut(probs, size, threshold):
    want, decided = plain_rle(probs, size, threshold)
    got = rle.decode(mean_mask_rle([probs], [1.0], size, threshold), size)
    np.testing.assert_array_equal(got[decided], rle.decode(want, size)[decided])


@pytest.mark.parametrize(
    "probs, code",
    [
        (np.zeros((3, 4), np.uint8), ""),
        (np.full((3, 4), 255, np.uint8), f"1 {12 * 20}"),  # one run over every row end
        (np.array([[255, 0, 0, 255]] * 3, np.uint8), None),  # runs across the row ends: right edge, then next left edge
        (np.array([[255, 0], [0, 0]], np.uint8), None),  # the first pixel
        (np.array([[0, 0], [0, 255]], np.uint8), None),  # the last pixel
    ],
)
def test_runs_through_row_ends_and_corners(probs, code):
    size = (12, 20)
    got = mean_mask_rle([probs], [1.0], size, 0.5)
    want, decided = plain_rle(probs, size, 0.5)
    assert decided.all()
    assert got == want
    if code is not None:
        assert got == code


@pytest.mark.parametrize("model_size", [(192, 288), (96, 144), (160, 240)])
@pytest.mark.parametrize("ragged", [False, True])
def test_kaggle_size_against_the_kernel_encoder(model_size, ragged):
    # The real models' sizes to 1918x1280, a clean outline and one crossing the cut back and forth.
    probs = smooth_map(model_size, 7)
    if ragged:
        rng = np.random.default_rng(8)
        probs = np.clip(probs.astype(int) + rng.integers(-120, 121, probs.shape), 0, 255).astype(np.uint8)
    size = (1280, 1918)
    got = mean_mask_rle([probs], [1.0], size, 0.5)
    assert got == rle.encode(mean_mask([probs], [1.0], size, 0.5))
    want, decided = plain_rle(probs, size, 0.5)
    if ragged:  # noise puts a few pixels exactly on the cut, where the two sums may round apart
        assert decided.mean() > 0.9999
        np.testing.assert_array_equal(rle.decode(got, size)[decided], rle.decode(want, size)[decided])
    else:
        assert decided.all() and got == want


@pytest.mark.real
@pytest.mark.skipif(not SAMPLE_MASKS.is_dir(), reason=f"real Carvana sample not found at {SAMPLE_MASKS.parent}")
def test_real_car_outlines_at_the_models_sizes():
    for path in sorted(SAMPLE_MASKS.glob("*_mask.gif"))[::4]:
        truth = load_mask(path)
        for model_size in ((192, 288), (96, 144)):
            small = downscale_mask(truth, model_size)
            drawn = mean_mask([small], [1.0], truth.shape, 0.5)
            assert mean_mask_rle([small], [1.0], truth.shape, 0.5) == rle.encode(drawn), path.name


@pytest.mark.parametrize("weight", [1.0, 0.7])
def test_one_model_decides_its_blocks_as_an_ensemble_of_itself(weight):
    # One model takes a shortcut (cells decided, then copied to blocks); the same map twice at half
    # the weight goes the general way, with the same sums to the last bit.
    probs = smooth_map((192, 288), 9)
    for cut in (127.5, 128.0, 128 - 1e-9, 60.0):  # a cut within the safety margin of a level, too
        one = decide_blocks([probs], [weight], (1280, 1918), cut, cut)
        two = decide_blocks([probs, probs], [weight / 2, weight / 2], (1280, 1918), cut, cut)
        np.testing.assert_array_equal(one.inside, two.inside)
        np.testing.assert_array_equal(one.undecided, two.undecided)
        assert one.undecided.mean() < 0.05 and one.inside.any()  # the blocks away from the outline are decided


def test_ensemble_of_two_model_sizes_at_kaggle_size():
    maps, weights, size = [smooth_map((192, 288), 10), smooth_map((128, 192), 11)], [0.6, 0.4], (1280, 1918)
    assert mean_mask_rle(maps, weights, size, 0.5) == rle.encode(mean_mask(maps, weights, size, 0.5))
