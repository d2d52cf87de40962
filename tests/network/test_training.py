"""train_model: the learning-rate plans, the files it writes, the facts it reports."""

import json

import numpy as np
import pandas as pd
import pytest

from carmask.demo.dataset import generate
from carmask.stages.manifest import build_manifest
from carmask.stages.split import split_by_car
from carmask.network.spec import ModelSpec
from carmask.network.training import train_model

FILES = {"model": "model.keras", "training": "training.json", "history": "history.csv", "curves": "curves.png", "summary": "summary.txt"}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    generate(folder, n_train_cars=3, n_test_cars=1, views=2, width=96, height=64, seed=2)
    train, val = split_by_car(build_manifest(folder)[0], val_fraction=1 / 3, seed=0)
    paths = {"train": str(folder / "train.parquet"), "val": str(folder / "val.parquet")}
    train.to_parquet(paths["train"])
    val.to_parquet(paths["val"])
    return paths


def cfg(**overrides) -> dict:
    base = {
        "architecture": "unet",
        "input_height": 16,
        "input_width": 24,
        "channels": 1,
        "encoder_weights": "none",
        "freeze_encoder": False,
        "base_filters": 2,
        "loss": "bce_dice",
        "epochs": 4,
        "batch_size": 2,
        "learning_rate": 0.01,
        "patience": 10,
        "flip_lr": True,
        "flip_ud": False,
        "seed": 1,
        "lr_schedule": "plateau",
        "monitor": "loss",
        "output_activation": "sigmoid",
        "color_jitter": 0.0,
        "zoom": 0.1,
        "stretch": 0.1,
        "shift": 0.05,
    }
    return {**base, **overrides}


def run(split, tmp_path, **overrides) -> tuple[dict, pd.DataFrame]:
    paths = {f"{key}_path": str(tmp_path / name) for key, name in FILES.items()}
    facts = train_model("tiny", split["train"], split["val"], ModelSpec.from_config(cfg(**overrides)), **paths)
    return facts, pd.read_csv(paths["history_path"])


def test_cosine_anneals_to_one_percent_over_the_epochs(split, tmp_path):
    facts, history = run(split, tmp_path, lr_schedule="cosine")
    steps = 2  # 4 training photos in batches of 2
    expected = [0.01 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * e * steps / (4 * steps)))) for e in range(1, 5)]
    np.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-5)
    assert facts["epochs_run"] == 4 and len(history) == 4


def test_plateau_keeps_the_rate_until_the_loss_stalls_and_writes_every_file(split, tmp_path):
    facts, history = run(split, tmp_path)
    assert history["learning_rate"].iloc[0] == pytest.approx(0.01)
    assert set(history.columns) >= {"epoch", "loss", "val_loss", "dice_coef", "val_dice_coef", "learning_rate"}
    for name in FILES.values():
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "training.json").read_text())
    assert saved == facts
    assert facts["n_train_images"] == 4 and facts["n_val_images"] == 2
    assert facts["best_epoch"] == int(history["val_loss"].idxmin()) + 1


def test_monitor_dice_keeps_the_epoch_with_the_best_validation_dice(split, tmp_path):
    # The kept weights must be that epoch's: the saved model, evaluated on the
    # validation photos, gives back the history's Dice of the reported epoch.
    import keras

    from carmask.network.datasets import training_dataset

    settings = ModelSpec.from_config(cfg(monitor="dice", epochs=5, learning_rate=0.05))
    facts, history = run(split, tmp_path, monitor="dice", epochs=5, learning_rate=0.05)
    best = int(history["val_dice_coef"].idxmax())
    assert facts["best_epoch"] == best + 1
    assert facts["best_val_dice_model_size"] == pytest.approx(history["val_dice_coef"].iloc[best])
    assert best != int(history["val_loss"].idxmin())  # the loss would have kept another epoch
    model = keras.models.load_model(tmp_path / "model.keras", compile=True)
    scores = model.evaluate(training_dataset(pd.read_parquet(split["val"]), settings, training=False), return_dict=True, verbose=0)
    assert scores["dice_coef"] == pytest.approx(history["val_dice_coef"].iloc[best], abs=1e-5)


def test_unknown_schedule_fails_before_training(split, tmp_path):
    with pytest.raises(ValueError, match="lr_schedule is 'step'; it must be one of plateau, cosine"):
        run(split, tmp_path, lr_schedule="step")
    assert not (tmp_path / "model.keras").exists()


def test_a_linear_head_trains_on_logits(split, tmp_path):
    # output_activation: linear makes the model output logits; training must
    # use the logit losses (the probability ones clip and stall) and the
    # history must still read as probabilities.
    import keras

    import carmask.network.losses

    facts, history = run(split, tmp_path, output_activation="linear", epochs=2)
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.loss is carmask.network.losses.bce_dice_from_logits
    assert model.get_layer("output_conv").activation.__name__ == "linear"
    assert model.get_layer("output_activation").activation.__name__ == "linear"
    assert history["dice_coef"].between(0, 1).all() and history["binary_accuracy"].between(0, 1).all()
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]


@pytest.mark.parametrize(("loss", "activation"), [("edge_bce_dice", "sigmoid"), ("edge_bce_dice", "linear")])
def test_the_outline_weighted_loss_learns_and_saves(split, tmp_path, loss, activation):
    import keras

    import carmask.network.losses

    facts, history = run(split, tmp_path, loss=loss, output_activation=activation, epochs=6, zoom=0.0, stretch=0.0, shift=0.0)
    assert history["loss"].iloc[-1] < 0.95 * history["loss"].iloc[0]
    assert history["dice_coef"].iloc[-1] > history["dice_coef"].iloc[0]
    model = keras.models.load_model(tmp_path / "model.keras")
    want = carmask.network.losses.edge_bce_dice if activation == "sigmoid" else carmask.network.losses.edge_bce_dice_from_logits
    assert model.loss is want
