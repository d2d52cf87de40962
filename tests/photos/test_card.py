"""The model card: written by the run, read back the same; found from a model, its folder or a run."""

from __future__ import annotations

import json
import shutil

import pytest

from carmask.network.spec import Prediction
from carmask.photos.card import ModelCard, ValidationRange, load_card

from ..conftest import TINY


def card_for(model_path, **changes) -> ModelCard:
    values = dict(model_path=model_path, size=TINY.size, channels=3, output_activation="sigmoid",
                  prediction=Prediction(batch_size=4, tta="flip_scale", precision="float32"), threshold=0.45,
                  refine="guided", architecture=TINY,
                  validation=ValidationRange(photos=12, car_fraction=(0.1, 0.3), uncertain_share=(0.01, 0.05)))
    values.update(changes)
    return ModelCard(**values)


def test_a_card_reads_back_as_written(tiny_model, tmp_path):
    card = card_for(tiny_model)
    assert ModelCard.from_json(json.loads(json.dumps(card.to_json())), tiny_model) == card


def test_unlike_names_each_statistic_well_outside_the_range():
    val = ValidationRange(photos=3, car_fraction=(0.1, 0.3), uncertain_share=(0.01, 0.05))
    for car, uncertain in [(0.2, 0.03), (0.05, 0.0), (0.6, 0.075)]:  # the bounds of the tolerance are inside
        assert val.unlike(car, uncertain) == "", (car, uncertain)
    assert val.unlike(0.04, 0.03).startswith("car fraction 0.040 outside 0.050-0.600")
    assert "car fraction 0.700" in val.unlike(0.7, 0.03)
    reason = val.unlike(0.2, 0.08)
    assert "uncertain share 0.080 above 0.075" in reason and "car fraction" not in reason


def test_load_card_from_a_model_its_folder_and_a_run(tiny_model, tmp_path):
    run = tmp_path / "run"
    folder = run / "results" / "models" / "unet"
    folder.mkdir(parents=True)
    shutil.copy(tiny_model, folder / "model.keras")
    (folder / "card.json").write_text(json.dumps(card_for(folder / "model.keras").to_json()))
    for source in (folder / "model.keras", folder, run / "results", run):
        card = load_card(source)
        assert card.model_path == folder / "model.keras" and card.prediction.tta == "flip_scale"


def test_a_run_with_several_models_uses_its_choice_or_asks(tiny_model, tmp_path):
    for name in ("a", "b"):
        (tmp_path / "models" / name).mkdir(parents=True)
        shutil.copy(tiny_model, tmp_path / "models" / name / "model.keras")
    with pytest.raises(ValueError, match="2 trained models"):
        load_card(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "best_model.txt").write_text("b\n")
    assert load_card(tmp_path).model_path == tmp_path / "models" / "b" / "model.keras"


def test_a_bare_model_is_predicted_as_saved(tiny_model):
    card = load_card(tiny_model, batch_size=3)
    assert card.architecture is None and card.validation is None
    assert (card.size, card.channels, card.output_activation) == (TINY.size, 3, "sigmoid")
    assert card.prediction == Prediction(batch_size=3, tta="flip", precision="float32")


def test_missing_model_and_unreadable_card_are_named(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.keras"):
        load_card(tmp_path / "nothing.keras")
    with pytest.raises(FileNotFoundError, match="no trained model"):
        load_card(tmp_path)
    shutil.copy(tiny_model, tmp_path / "model.keras")
    (tmp_path / "card.json").write_text("{}")
    with pytest.raises(ValueError, match="card.json is not a model card"):
        load_card(tmp_path / "model.keras")
