"""The threshold: Dice at every grid value in one pass, the choice, and tuning on validation files."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.masks.upsample import mean_mask
from carmask.files import write_parquet
from carmask.masks.dice import dice
from carmask.stages.threshold import resolve
from carmask.stages.threshold_search import GRID, choose, dice_counts, dice_curve, tune_threshold

from ..masks.test_upsample import smooth_map, write_predictions


def test_grid():
    assert GRID[0] == 0.1 and GRID[-1] == 0.9 and 0.5 in GRID and len(GRID) == 41


def test_curve_equals_thresholding_and_scoring_each():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 255, (60, 80))
    values[:5] = 255 * 0.5  # exactly on a cut: not above it
    truth = rng.uniform(0, 255, (60, 80)) < values
    curve = dice_curve(*dice_counts(values, truth, GRID))
    want = [dice(values > 255 * t, truth) for t in GRID]
    np.testing.assert_allclose(curve, want, rtol=0, atol=1e-12)


def test_empty_truth_and_empty_prediction_score_one():
    curve = dice_curve(*dice_counts(np.zeros((4, 4)), np.zeros((4, 4), bool), GRID))
    assert (curve == 1.0).all()


def test_choice_is_the_best_and_ties_go_to_the_middle():
    assert choose([0.3, 0.4, 0.5], [0.9, 0.95, 0.94]) == 0.4
    assert choose([0.3, 0.4, 0.5, 0.6], [0.9, 0.95, 0.95, 0.95]) == 0.5
    assert choose([0.42, 0.58], [1.0, 1.0]) == 0.42


def test_tune_on_validation_files_finds_the_cut_the_truth_was_made_at(tmp_path):
    # True masks are where two models' full-size mean is above 0.3: the tuned
    # threshold must land there, and its Dice must be what scoring the mask
    # cut there gives.
    size, weights = (64, 96), [0.5, 0.5]
    rows, a_maps, b_maps = [], [], []
    for i in range(3):
        a, b = smooth_map((16, 24), 10 + i), smooth_map((32, 48), 20 + i)
        truth = mean_mask([a, b], weights, size, 0.3)
        path = tmp_path / f"car{i:09d}_01_mask.gif"
        Image.fromarray(truth.astype(np.uint8)).save(path)
        rows.append({"img": f"car{i:09d}_01.jpg", "height": size[0], "width": size[1], "mask_path": str(path)})
        a_maps.append(a)
        b_maps.append(b)
    names = [r["img"] for r in rows]
    write_parquet(pd.DataFrame(rows), tmp_path / "val.parquet")
    write_predictions(tmp_path / "a.parquet", names, a_maps)
    write_predictions(tmp_path / "b.parquet", names, b_maps)
    out = tmp_path / "threshold.json"
    chosen = tune_threshold([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], weights, str(tmp_path / "val.parquet"), str(out))
    assert chosen == 0.3
    facts = json.loads(out.read_text())
    assert facts["threshold"] == 0.3 and facts["dice"] == 1.0 and facts["n_images"] == 3
    assert facts["dice_at_0.5"] < 1.0 and len(facts["curve"]) == len(GRID)
    want = np.mean([dice(mean_mask([a, b], weights, size, 0.5), mean_mask([a, b], weights, size, 0.3))
                    for a, b in zip(a_maps, b_maps)])
    assert facts["dice_at_0.5"] == pytest.approx(want, abs=1e-12)
    assert resolve("auto", out) == 0.3 and resolve(0.45, None) == 0.45
    with pytest.raises(ValueError, match="auto"):
        resolve("auto", None)
