"""The model card: a trained model's architecture, how the run predicted with it, and its validation photos' range.

Written beside ``model.keras`` so the model can be used on any folder of
photos without the run's config (``carmask cutout``, the ``photos`` target).
The range is what the validation photos looked like through this model: the
share of each photo that is car (from the validation masks the run
encoded) and the share of its model-size pixels the model was unsure of; a
user's photo outside it is flagged for a look by eye.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carmask import files
from carmask.masks import rle
from carmask.masks.probability_maps import read_probabilities
from carmask.network.spec import Architecture, Prediction
from carmask.photos.card import UNCERTAIN, ModelCard, ValidationRange


def validation_range(val_items: str | Path, prediction_paths: Sequence[str | Path], rle_paths: Sequence[str | Path]) -> ValidationRange:
    """The range of car fraction (full-size masks) and uncertain share (model-size probabilities) over the validation photos."""
    items = pd.read_parquet(val_items, columns=["img", "width", "height"]).set_index("img")
    codes = pd.concat([pd.read_parquet(p) for p in rle_paths]).set_index("img")["rle_mask"]
    pixels = (items["width"] * items["height"]).reindex(codes.index)
    if pixels.isna().any():
        raise ValueError(f"validation masks of images not in {val_items}: {list(pixels.index[pixels.isna()])[:3]}")
    car = np.array([rle.parse(code)[:, 1].sum() for code in codes]) / pixels.to_numpy()
    uncertain = [float(np.mean((p > UNCERTAIN[0]) & (p < UNCERTAIN[1])))
                 for path in prediction_paths for _, p in read_probabilities(path)]
    if not len(car) or not uncertain:
        raise ValueError("no validation photos: the model card needs the validation predictions")
    return ValidationRange(photos=len(car), car_fraction=(round(float(car.min()), 6), round(float(car.max()), 6)),
                           uncertain_share=(round(min(uncertain), 6), round(max(uncertain), 6)))


def write_card(
    block: Mapping[str, Any], prediction: Prediction, threshold: float, refine: str, validation: ValidationRange,
    model_path: str | Path, out: str | Path,
) -> ModelCard:
    """Write the card of the model at ``model_path`` (config ``block``, the run's inference settings) to ``out``."""
    arch = Architecture.from_config(block)
    card = ModelCard(
        model_path=Path(model_path), size=arch.size, channels=arch.channels, output_activation=arch.output_activation,
        prediction=prediction, threshold=threshold, refine=refine, architecture=arch, validation=validation,
    )
    files.write_json(card.to_json(), out)
    return card
