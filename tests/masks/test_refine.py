"""Edge refinement: the guided filter against a direct computation, and what it is for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.masks import rle
from carmask.stages.encode import encode_shard
from carmask.masks.upsample import mean_mask, mean_probabilities
from carmask.files import write_parquet
from carmask.masks.images import quantise
from carmask.masks.dice import dice
from carmask.masks.probability_maps import PREDICTIONS_SCHEMA, record_batch
from carmask.masks.refine import BAND, _box, guided_coefficients, load_gray, refined_mask

from ..reference import bilinear

FULL = (128, 192)  # photo size
MODEL = (16, 24)  # 8x smaller, as 160x240 is for Kaggle's photos


def naive_box(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape
    return np.array([[x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean() for j in range(w)] for i in range(h)])


@pytest.mark.parametrize("r", [1, 2, 5])
def test_box_means_match_the_windows_clipped_at_the_borders(r):
    x = np.random.default_rng(r).random((13, 17))
    np.testing.assert_allclose(_box(x, r), naive_box(x, r), atol=1e-12)


def test_guided_coefficients_are_the_window_least_squares_fits_averaged():
    rng = np.random.default_rng(0)
    guide, probs = rng.random((9, 11)), rng.random((9, 11))
    r, eps = 2, 1e-3
    h, w = guide.shape
    a, b = np.zeros((h, w)), np.zeros((h, w))  # per window: the ridge fit of probs on guide
    for i in range(h):
        for j in range(w):
            g = guide[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].ravel()
            p = probs[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].ravel()
            a[i, j] = (np.mean(g * p) - g.mean() * p.mean()) / (g.var() + eps)
            b[i, j] = p.mean() - a[i, j] * g.mean()
    got_a, got_b = guided_coefficients(guide, probs, r, eps)
    np.testing.assert_allclose(got_a, naive_box(a, r), atol=1e-10)
    np.testing.assert_allclose(got_b, naive_box(b, r), atol=1e-10)


def scene(offset: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo brightness, true mask, model-size probabilities whose outline is ``offset`` pixels off).

    A bright car on a dark floor with a slanted edge; the model saw it at
    1/8 size and places the edge ``offset`` full-size pixels too far right.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: FULL[0], : FULL[1]]
    edge = 110 + 0.25 * (rows - 64)
    truth = cols < edge
    gray = np.where(truth, 0.8, 0.25) + rng.normal(0, 0.02, FULL)
    gray = np.clip(gray, 0, 1).astype(np.float32)
    soft = 1 / (1 + np.exp((cols - edge - offset) / 4.0))  # the model's blurry, shifted outline
    small = np.asarray(Image.fromarray(soft.astype(np.float32)).resize(MODEL[::-1], Image.BOX))
    return gray, truth, quantise(small)


def test_refinement_moves_the_outline_onto_the_photos_edge():
    gray, truth, probs = scene(offset=3)
    before = mean_mask([probs], [1.0], FULL, 0.5)
    after = refined_mask([probs], [1.0], gray, 0.5)
    assert dice(after, truth) > dice(before, truth) + 0.005
    # the outline now sits on the true edge in most rows (it was 2-4 pixels off in all)
    wrong_before = (before != truth).sum(axis=1)
    wrong_after = (after != truth).sum(axis=1)
    assert (wrong_before >= 2).mean() > 0.9 and (wrong_after <= 1).mean() > 0.8


def test_only_the_uncertain_band_changes_and_it_matches_a_direct_computation():
    gray, _, probs = scene(offset=5, seed=1)
    maps, weights = [probs, np.roll(probs, 1, axis=1)], [0.7, 0.3]  # an ensemble of two
    got = refined_mask(maps, weights, gray, 0.5)
    full = mean_probabilities(maps, weights, FULL) / 255.0  # every pixel interpolated
    band = (full > BAND[0]) & (full < BAND[1])
    assert band.any() and not band.all()
    np.testing.assert_array_equal(got[~band], full[~band] > 0.5)
    # inside: the fast guided filter computed directly at a quarter of the size, then bilinear
    coarse = (FULL[0] // 4, FULL[1] // 4)
    guide = np.asarray(Image.fromarray(gray).resize(coarse[::-1], Image.BOX), dtype=np.float64)
    a, b = guided_coefficients(guide, mean_probabilities(maps, weights, coarse) / 255.0, 2, 1e-3)
    filtered = bilinear(a, FULL) * gray + bilinear(b, FULL)
    np.testing.assert_array_equal(got[band], filtered[band] > 0.5)


@pytest.mark.parametrize("value", [0, 4, 251, 255])
def test_a_map_with_no_uncertain_pixel_is_left_as_it_is(value):
    gray, _, _ = scene()
    probs = np.full(MODEL, value, np.uint8)  # no car, or all car: nothing in the band
    np.testing.assert_array_equal(refined_mask([probs], [1.0], gray, 0.5), np.full(FULL, value > 127))


def test_load_gray_reads_the_brightness_at_full_size(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, 15:] = 200
    Image.fromarray(rgb).save(tmp_path / "p.jpg", quality=95)
    gray = load_gray(tmp_path / "p.jpg")
    assert gray.shape == (20, 30) and gray.dtype == np.float32
    assert abs(gray[:, :10].mean()) < 0.02 and abs(gray[:, 20:].mean() - 200 / 255) < 0.02


def test_encode_stage_refines_with_each_photo_and_checks_its_size(tmp_path):
    gray, truth, probs = scene(offset=3)
    photo = tmp_path / "0123456789ab_01.jpg"
    Image.fromarray((gray * 255).round().astype(np.uint8)).save(photo, quality=98)
    items = pd.DataFrame({"img": [photo.name], "image_path": [str(photo)], "height": [FULL[0]], "width": [FULL[1]]})
    write_parquet(items, tmp_path / "items.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_batches([record_batch([photo.name], probs[None])], schema=PREDICTIONS_SCHEMA), tmp_path / "p.parquet")
    args = ([str(tmp_path / "p.parquet")], [1.0], str(tmp_path / "items.parquet"))
    encode_shard(*args, str(tmp_path / "plain.parquet"), 0.5)
    encode_shard(*args, str(tmp_path / "refined.parquet"), 0.5, refine="guided")
    plain = rle.decode(pd.read_parquet(tmp_path / "plain.parquet")["rle_mask"][0], FULL)
    refined = rle.decode(pd.read_parquet(tmp_path / "refined.parquet")["rle_mask"][0], FULL)
    np.testing.assert_array_equal(plain, mean_mask([probs], [1.0], FULL, 0.5))
    np.testing.assert_array_equal(refined, refined_mask([probs], [1.0], load_gray(photo), 0.5))
    assert dice(refined, truth) > dice(plain, truth)
    with pytest.raises(ValueError, match="inference.refine is 'sharpen'"):
        encode_shard(*args, str(tmp_path / "x.parquet"), 0.5, refine="sharpen")
    Image.fromarray((gray[:, :-2] * 255).astype(np.uint8)).save(photo, quality=98)  # replaced since the manifest
    with pytest.raises(ValueError, match="is 190x128, the manifest says 192x128"):
        encode_shard(*args, str(tmp_path / "y.parquet"), 0.5, refine="guided")
    assert not (tmp_path / "y.parquet").exists()
