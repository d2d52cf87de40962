"""Ensembles: the weighted mean of models' probabilities at full size, and its fast mask."""

import numpy as np
import pytest

from carmask.ensemble import mean_mask, mean_probabilities
from carmask.settings import normalise_weights
from carmask.images import probs_to_mask
from carmask.predictions import read_members, record_batch
from carmask.tuning import GRID

from .reference import bilinear


def smooth_map(shape, seed):
    """A blob with soft edges and some noise: outlines of every slope cross the cuts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    blob = 255 / (1 + np.exp(-(0.35 * shape[0] - np.hypot(y - shape[0] / 2, (x - shape[1] / 2) * 0.7)) / 1.5))
    return np.clip(blob + rng.normal(0, 25, shape), 0, 255).astype(np.uint8)


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
            np.testing.assert_array_equal(mean_mask([probs], [1.0], size, threshold), probs_to_mask(probs, size, threshold))


def test_equal_maps_average_to_themselves():
    probs = smooth_map((32, 48), 3)
    np.testing.assert_array_equal(mean_mask([probs, probs], [0.5, 0.5], (128, 192), 0.4), probs_to_mask(probs, (128, 192), 0.4))


def test_weights_move_the_mask_towards_the_heavier_model():
    full, empty = np.full((8, 12), 255, np.uint8), np.zeros((16, 24), np.uint8)
    assert mean_mask([full, empty], [0.6, 0.4], (32, 48), 0.5).all()
    assert not mean_mask([full, empty], [0.4, 0.6], (32, 48), 0.5).any()


def write_predictions(path, names, maps):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from carmask.predictions import PREDICTIONS_SCHEMA

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
