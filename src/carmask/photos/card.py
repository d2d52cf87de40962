"""A trained model with everything needed to use it on other photos: its model card.

A ``model.keras`` alone says neither how the run predicted (test-time views,
precision, threshold, refinement) nor what its validation photos looked
like. The workflow writes ``card.json`` beside every trained model
(``results/models/<model>/card.json``): the architecture block, the
inference settings, the threshold the run cut at, and the range of two
statistics over the validation photos, against which a user's photo is
flagged as unlike anything the model was validated on. A bare
``model.keras`` (no card beside it) still works, predicted as it was saved,
without the views that need the architecture rebuilt and without flags.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carmask.network.spec import Architecture, Prediction

CARD_NAME = "card.json"
MODEL_NAME = "model.keras"
#: Model-size probabilities (0..255) strictly between these are "uncertain".
UNCERTAIN = (26, 229)


#: How far outside the validation photos' range a statistic may go before a
#: photo is flagged. Framing alone moves the car fraction: a 4:3 or square
#: crop of a Kaggle photo holds up to 1.5 times as much car, with masks as
#: good (docs/photos.md), so only a car fraction below half the smallest or
#: above twice the largest is unlike them; more certainty is never a warning,
#: an uncertain share above 1.5 times the largest is.
CAR_FRACTION_TOLERANCE = 2.0
UNCERTAIN_TOLERANCE = 1.5


@dataclass(frozen=True)
class ValidationRange:
    """What the model's validation photos looked like: the min and max of each statistic."""

    photos: int
    car_fraction: tuple[float, float]
    uncertain_share: tuple[float, float]

    def unlike(self, car_fraction: float, uncertain_share: float) -> str:
        """Why a photo's statistics are unlike the validation photos' ("" when they are not)."""
        reasons = []
        low, high = self.car_fraction[0] / CAR_FRACTION_TOLERANCE, self.car_fraction[1] * CAR_FRACTION_TOLERANCE
        if not low <= car_fraction <= high:
            reasons.append(f"car fraction {car_fraction:.3f} outside {low:.3f}-{high:.3f} "
                           f"(the validation photos': {self.car_fraction[0]:.3f}-{self.car_fraction[1]:.3f})")
        most = self.uncertain_share[1] * UNCERTAIN_TOLERANCE
        if uncertain_share > most:
            reasons.append(f"uncertain share {uncertain_share:.3f} above {most:.3f} "
                           f"(the validation photos' largest: {self.uncertain_share[1]:.3f})")
        return "; ".join(reasons)


@dataclass(frozen=True)
class ModelCard:
    """A trained model and how to predict with it."""

    model_path: Path
    size: tuple[int, int]
    channels: int
    output_activation: str | None
    prediction: Prediction
    threshold: float = 0.5
    refine: str = "none"
    architecture: Architecture | None = None
    validation: ValidationRange | None = None

    @property
    def refiner_path(self) -> Path:
        """Where the learned refinement (``refine: learned``) of the model lies: beside it."""
        return self.model_path.with_name("refiner.keras")

    def to_json(self) -> dict[str, Any]:
        """The card as written to ``card.json`` (the model's path is where the card lies, not in it)."""
        data = {
            "prediction": dataclasses.asdict(self.prediction),
            "threshold": self.threshold,
            "refine": self.refine,
            "architecture": dataclasses.asdict(self.architecture) if self.architecture else None,
            "validation": dataclasses.asdict(self.validation) if self.validation else None,
        }
        if data["architecture"] and data["architecture"]["decoder_filters"] is not None:
            data["architecture"]["decoder_filters"] = list(data["architecture"]["decoder_filters"])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], model_path: Path) -> ModelCard:
        """The card of ``model_path`` from its ``card.json`` contents."""
        arch = dict(data["architecture"])
        if arch.get("decoder_filters") is not None:
            arch["decoder_filters"] = tuple(arch["decoder_filters"])
        architecture = Architecture(**arch)
        val = data.get("validation")
        validation = None if val is None else ValidationRange(
            photos=val["photos"], car_fraction=tuple(val["car_fraction"]), uncertain_share=tuple(val["uncertain_share"])
        )
        return cls(model_path=model_path, size=architecture.size, channels=architecture.channels,
                   output_activation=architecture.output_activation, prediction=Prediction(**data["prediction"]),
                   threshold=float(data["threshold"]), refine=data["refine"], architecture=architecture,
                   validation=validation)


def _bare(model_path: Path, batch_size: int) -> ModelCard:
    """A card for a ``model.keras`` without one: its own input size and head, predicted as saved, no flags."""
    from carmask.network.export import head_activation
    from carmask.network.inference import load_keras_model

    model = load_keras_model(model_path)
    _, height, width, channels = model.inputs[0].shape
    return ModelCard(model_path=model_path, size=(height, width), channels=channels,
                     output_activation=head_activation(model, model_path),
                     prediction=Prediction(batch_size=batch_size, tta="flip", precision=model.dtype_policy.name))


def _model_in_run(results: Path) -> Path:
    """The trained model of a run's ``results/``: the only one, or the one the run chose as best."""
    models = sorted(p.parent for p in results.glob(f"models/*/{MODEL_NAME}"))
    if len(models) == 1:
        return models[0] / MODEL_NAME
    chosen = results / "metrics" / "best_model.txt"
    if chosen.is_file() and (results / "models" / chosen.read_text().strip() / MODEL_NAME).is_file():
        return results / "models" / chosen.read_text().strip() / MODEL_NAME
    if not models:
        raise FileNotFoundError(f"{results} holds no trained model (no models/*/{MODEL_NAME})")
    names = ", ".join(str(m) for m in models)
    raise ValueError(f"{results} holds {len(models)} trained models and no choice among them; pass one of: {names}")


def load_card(source: str | Path, batch_size: int = 8) -> ModelCard:
    """The card of MODEL: a ``model.keras``, the folder holding one, a run's ``results/`` or the run's folder.

    ``batch_size`` is used only for a bare model (a card has its run's).
    """
    source = Path(source)
    if source.is_dir():
        if (source / MODEL_NAME).is_file():
            source = source / MODEL_NAME
        else:
            source = _model_in_run(source / "results" if (source / "results" / "models").is_dir() else source)
    if not source.is_file():
        raise FileNotFoundError(f"model {source} does not exist")
    card = source.parent / CARD_NAME
    if not card.is_file():
        return _bare(source, batch_size)
    try:
        return ModelCard.from_json(json.loads(card.read_text()), source)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{card} is not a model card this version reads: {err}") from None
