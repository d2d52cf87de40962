"""Predictions files' companions: the precision a model's predictions were computed in."""

from __future__ import annotations

import json

import pytest

from carmask.masks.probability_maps import check_same_precision, read_precision


def timings(tmp_path, *precisions):
    paths = []
    for i, precision in enumerate(precisions):
        path = tmp_path / f"shard-{i}.timing.json"
        path.write_text(json.dumps({"images": 3, "images_per_s": 9.0, **({"precision": precision} if precision else {})}))
        paths.append(str(path))
    return paths


def test_one_precision_is_read_back(tmp_path):
    assert read_precision(timings(tmp_path, "mixed_bfloat16", "mixed_bfloat16"), "test predictions") == "mixed_bfloat16"


@pytest.mark.parametrize("precisions", [("float32", "mixed_bfloat16"), ("float32", None)])
def test_mixed_or_unknown_precisions_are_named(tmp_path, precisions):
    with pytest.raises(ValueError, match=r"the val predictions were not all predicted in one known precision .*shard-1"):
        read_precision(timings(tmp_path, *precisions), "the val predictions")


def test_test_masks_must_be_in_the_precision_the_model_was_scored_in(tmp_path):
    paths = timings(tmp_path, "mixed_float16", "mixed_float16")
    metrics = tmp_path / "unet.json"
    metrics.write_text(json.dumps({"dice_mean": 0.99, "precision": "mixed_float16"}))
    check_same_precision(metrics, paths, "unet")
    metrics.write_text(json.dumps({"dice_mean": 0.99, "precision": "mixed_bfloat16"}))
    with pytest.raises(ValueError, match="unet: the test set was predicted in mixed_float16, its validation photos in mixed_bfloat16"):
        check_same_precision(metrics, paths, "unet")
