"""The model card's validation range, from the run's own validation files, against hand-counted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carmask.files import write_parquet
from carmask.masks import rle
from carmask.masks.probability_maps import PREDICTIONS_SCHEMA, record_batch
from carmask.network.spec import Prediction
from carmask.photos.card import load_card
from carmask.stages.model_card import validation_range, write_card


@pytest.fixture
def val_files(tmp_path):
    masks = {"a_01.jpg": np.zeros((10, 20), bool), "b_01.jpg": np.zeros((10, 20), bool)}
    masks["a_01.jpg"][2:6, 3:13] = True  # 40 of 200 pixels
    masks["b_01.jpg"][:, :15] = True  # 150 of 200
    write_parquet(pd.DataFrame({"img": list(masks), "width": 20, "height": 10}), tmp_path / "val.parquet")
    write_parquet(pd.DataFrame({"img": list(masks), "rle_mask": [rle.encode(m) for m in masks.values()]}), tmp_path / "rle.parquet")
    probs = np.zeros((2, 4, 5), np.uint8)
    probs[0, 0, :2] = 128  # 2 of 20 uncertain
    probs[1, :, :] = 255
    probs[1, 0, 0] = 26  # exactly at the bound: not uncertain
    probs[1, 0, 1] = 229
    with pq.ParquetWriter(tmp_path / "pred.parquet", PREDICTIONS_SCHEMA) as writer:
        writer.write_table(pa.Table.from_batches([record_batch(list(masks), probs)]))
    return tmp_path


def test_validation_range_counts_car_and_uncertain_pixels(val_files):
    got = validation_range(val_files / "val.parquet", [val_files / "pred.parquet"], [val_files / "rle.parquet"])
    assert got.photos == 2
    assert got.car_fraction == pytest.approx((0.2, 0.75))
    assert got.uncertain_share == pytest.approx((0.0, 0.1))


def test_masks_of_photos_outside_the_split_are_an_error(val_files):
    write_parquet(pd.DataFrame({"img": ["a_01.jpg"], "width": 20, "height": 10}), val_files / "val.parquet")
    with pytest.raises(ValueError, match="not in"):
        validation_range(val_files / "val.parquet", [val_files / "pred.parquet"], [val_files / "rle.parquet"])


def test_a_written_card_is_what_load_card_reads(val_files):
    from ..conftest import TINY

    block = {"architecture": "unet", "input_height": 32, "input_width": 48, "channels": 3, "base_filters": 4,
             "encoder_weights": "none", "loss": "bce_dice", "epochs": 3, "batch_size": 4}
    model = val_files / "models" / "unet" / "model.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    val = validation_range(val_files / "val.parquet", [val_files / "pred.parquet"], [val_files / "rle.parquet"])
    written = write_card(block, Prediction(4, "scale", "float32"), 0.4, "guided", val, model, model.parent / "card.json")
    card = load_card(model.parent)
    assert card == written and card.architecture == TINY and card.threshold == 0.4
