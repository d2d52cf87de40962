"""Full-size bilinear upsampling: one model's mask and the weighted mean of several, against plain computations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from carmask.masks.upsample import _blocks, mean_mask, mean_probabilities, pixels_between
from carmask.planning.settings import normalise_weights
from carmask.masks.probability_maps import read_members, record_batch
from carmask.stages.threshold_search import GRID

from ..reference import bilinear


def smooth_map(shape, seed):
    """A blob with soft edges and some noise: outlines of every slope cross the cuts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    blob = 255 / (1 + np.exp(-(0.35 * shape[0] - np.hypot(y - shape[0] / 2, (x - shape[1] / 2) * 0.7)) / 1.5))
    return np.clip(blob + rng.normal(0, 25, shape), 0, 255).astype(np.uint8)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
        lambda hw: arrays(np.uint8, hw, elements=st.sampled_from([0, 1, 60, 127, 128, 200, 254, 255]))
    ),
    st.tuples(st.integers(1, 100), st.integers(1, 100)),
    st.sampled_from([0.3, 0.5, 0.9]),
)
def test_one_model_mask_equals_full_bilinear(probs, size, threshold):
    """The block-skipping mask equals thresholding every interpolated pixel."""
    ref = bilinear(probs, size)
    fast = mean_mask([probs], [1.0], size, threshold)
    decided = np.abs(ref - 255 * threshold) > 1e-9  # exact ties are rounding noise
    assert fast.shape == size
    assert np.array_equal(fast[decided], (ref > 255 * threshold)[decided])


def test_reference_bilinear_matches_pillow():
    # The reference the mask is tested against is the usual bilinear resize.
    rng = np.random.default_rng(1)
    probs = (rng.random((20, 30)) * 255).astype(np.uint8)
    pillow = np.asarray(Image.fromarray(probs).resize((191, 128), Image.BILINEAR), dtype=float)
    assert np.abs(bilinear(probs, (128, 191)) - pillow).max() <= 1.0


def test_the_mask_interpolates_not_nearest():
    # 0 and 255 side by side: a bilinear edge lands between them at the threshold's place.
    probs = np.array([[0, 255]], np.uint8)
    assert mean_mask([probs], [1.0], (1, 8), 0.5).tolist() == [[False] * 4 + [True] * 4]
    assert mean_mask([probs], [1.0], (1, 8), 0.8).tolist() == [[False] * 5 + [True] * 3]


def test_weights_are_normalised_and_checked():
    assert normalise_weights(None, 4) == [0.25] * 4
    assert normalise_weights([2, 1, 1], 3) == [0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="2 weights for 3 models"):
        normalise_weights([1, 1], 3)
    with pytest.raises(ValueError, match="positive"):
        normalise_weights([1, 0], 2)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.72])
def test_two_maps_of_different_sizes_against_a_direct_computation(threshold):
    # The check: two hand-made maps of different model sizes,
    # averaged at full size, against the plain pixel-by-pixel computation.
    a, b = smooth_map((24, 36), 0), smooth_map((40, 56), 1)
    size, weights = (96, 150), [0.25, 0.75]
    direct = 0.25 * bilinear(a, size) + 0.75 * bilinear(b, size)
    cut = 255 * threshold
    mask = mean_mask([a, b], weights, size, threshold)
    assert mask.shape == size and mask.dtype == bool
    decided = np.abs(direct - cut) > 1e-9  # the two sum in another order: leave exact ties out
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(mask[decided], (direct > cut)[decided])
    assert 0.05 < mask.mean() < 0.95  # the cut goes through the blob, not around it
    np.testing.assert_allclose(mean_probabilities([a, b], weights, size), direct, atol=1e-9)
    # and the fast mask is the full mean thresholded, pixel for pixel
    np.testing.assert_array_equal(mask, mean_probabilities([a, b], weights, size) > cut)


def test_one_model_is_its_own_mask_exactly():
    # every threshold of the tuning grid, including 0.2, 0.4, 0.6 and 0.8, whose
    # cuts (51, 102, 153, 204) uint8 probabilities can sit exactly on
    probs = smooth_map((32, 48), 2)
    for size in ((128, 192), (97, 151)):
        for threshold in GRID:
            np.testing.assert_array_equal(mean_mask([probs], [1.0], size, threshold), mean_probabilities([probs], [1.0], size) > 255 * threshold)


def test_kaggle_size_from_the_real_80_model_size_pixel_for_pixel():
    # 192x288 to 1918x1280: the first cell along each axis, longer by its
    # clamped pixels, is split so that blocks are at most 7 pixels a side;
    # every pixel must still be the plain bilinear value's, in the mask and
    # in the band between two cuts.
    probs, size = smooth_map((192, 288), 5), (1280, 1918)
    assert _blocks(1280, (192,))[1].max() == 7 and _blocks(1918, (288,))[1].max() == 7
    ref = bilinear(probs, size)
    decided = np.abs(ref - 127.5) > 1e-9  # the two sum in another order: leave exact ties out
    np.testing.assert_array_equal(mean_mask([probs], [1.0], size, 0.5)[decided], (ref > 127.5)[decided])
    above, flat, value = pixels_between([probs], [1.0], size, 60.0, 190.0)
    band = ((ref >= 60.0) & (ref <= 190.0)).reshape(-1)
    assert band.any() and np.isin(np.flatnonzero(band), flat).all()  # every band pixel is interpolated
    np.testing.assert_allclose(value, ref.reshape(-1)[flat], rtol=0, atol=1e-9)
    rest = np.ones(band.size, dtype=bool)
    rest[flat] = False
    np.testing.assert_array_equal(above.reshape(-1)[rest], (ref > 190.0).reshape(-1)[rest])


def test_equal_maps_average_to_themselves():
    probs = smooth_map((32, 48), 3)
    np.testing.assert_array_equal(mean_mask([probs, probs], [0.5, 0.5], (128, 192), 0.4), mean_mask([probs], [1.0], (128, 192), 0.4))


def test_weights_move_the_mask_towards_the_heavier_model():
    full, empty = np.full((8, 12), 255, np.uint8), np.zeros((16, 24), np.uint8)
    assert mean_mask([full, empty], [0.6, 0.4], (32, 48), 0.5).all()
    assert not mean_mask([full, empty], [0.4, 0.6], (32, 48), 0.5).any()


def write_predictions(path, names, maps):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from carmask.masks.probability_maps import PREDICTIONS_SCHEMA

    batches = [record_batch([n], m[None]) for n, m in zip(names, maps)]
    pq.write_table(pa.Table.from_batches(batches, schema=PREDICTIONS_SCHEMA), path)


def test_members_are_read_in_lockstep_and_must_align(tmp_path):
    a = [np.full((4, 6), i, np.uint8) for i in range(3)]
    b = [np.full((8, 12), 10 + i, np.uint8) for i in range(3)]
    write_predictions(tmp_path / "a.parquet", ["x", "y", "z"], a)
    write_predictions(tmp_path / "b.parquet", ["x", "y", "z"], b)
    got = list(read_members([tmp_path / "a.parquet", tmp_path / "b.parquet"]))
    assert [img for img, _ in got] == ["x", "y", "z"]
    assert [(m[0][0, 0], m[1].shape) for _, m in got] == [(0, (8, 12)), (1, (8, 12)), (2, (8, 12))]
    write_predictions(tmp_path / "c.parquet", ["x", "z", "y"], a)
    with pytest.raises(ValueError, match="not aligned"):
        list(read_members([tmp_path / "a.parquet", tmp_path / "c.parquet"]))
    write_predictions(tmp_path / "d.parquet", ["x", "y"], a[:2])
    with pytest.raises(ValueError, match="different numbers"):
        list(read_members([tmp_path / "a.parquet", tmp_path / "d.parquet"]))
