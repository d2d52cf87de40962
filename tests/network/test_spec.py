"""Typed settings: every shipped config converts, bad values fail with one message, and the schema agrees with the code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from carmask.network.architectures import ARCHITECTURES
from carmask.network.losses import LOSSES as LOSS_FUNCTIONS
from carmask.network.spec import (
    ARCHITECTURE_NAMES,
    LOSS_NAMES,
    LR_SCHEDULES,
    MONITORS,
    TTA_MODES,
    Architecture,
    Augmentation,
    ModelSpec,
    Prediction,
    Training,
)
from carmask.planning.settings import PRECISIONS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
MODEL_SCHEMA = SCHEMA["definitions"]["model"]["properties"]


def shipped_blocks():
    """Every model block of config.yaml and of each config/*.yaml layered on it, as the workflow validates it."""
    from snakemake.utils import update_config, validate

    for layer in [None, *sorted((ROOT / "config").glob("*.yaml"))]:
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        if layer is not None:
            update_config(config, yaml.safe_load(layer.read_text()))
        validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
        for name, block in config["models"].items():
            yield pytest.param(block, id=f"{layer.name if layer else 'config.yaml'}:{name}")


@pytest.mark.parametrize("block", list(shipped_blocks()))
def test_every_shipped_model_block_converts(block):
    spec = ModelSpec.from_config(block)
    assert spec.architecture.name == block["architecture"] and spec.architecture.size == (block["input_height"], block["input_width"])
    assert spec.training.epochs == block["epochs"] and spec.augmentation.flip_lr == block["flip_lr"]


def test_unknown_and_missing_settings_are_named():
    block = {"architecture": "unet", "input_height": 32, "input_width": 48, "channels": 1, "loss": "bce", "epochs": 1,
             "batch_size": 2, "learning_rate": 1e-3, "patience": 1}
    assert ModelSpec.from_config(block).architecture.size == (32, 48)
    with pytest.raises(ValueError, match="unknown model settings: epoch"):
        ModelSpec.from_config({**block, "epoch": 3})
    with pytest.raises(ValueError, match="unknown model settings: precision"):  # the training one is train_precision
        ModelSpec.from_config({**block, "precision": "mixed_bfloat16"})
    assert ModelSpec.from_config({**block, "train_precision": "mixed_bfloat16"}).architecture.precision == "mixed_bfloat16"
    with pytest.raises(ValueError, match="lack 'learning_rate'"):
        ModelSpec.from_config({k: v for k, v in block.items() if k != "learning_rate"})
    with pytest.raises(ValueError, match="monitor is 'iou'; it must be one of loss, dice"):
        ModelSpec.from_config({**block, "monitor": "iou"})
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        ModelSpec.from_config({**block, "epochs": 0})


def test_prediction_settings_are_checked_once_where_they_are_made():
    assert Prediction(8, "flip_scale", "mixed_bfloat16").views == (True, True)
    with pytest.raises(ValueError, match="inference.precision is 'auto'"):
        Prediction(8, "flip", "auto")  # resolved while the workflow plans, never below
    with pytest.raises(ValueError, match="inference.batch_size must be at least 1"):
        Prediction(0, "flip", "float32")


def test_twins_and_scales_keep_the_network():
    arch = Architecture("unet", 96, 144, 3, base_filters=8, precision="float32")
    assert arch.scaled(1.25).size == (120, 180) and arch.scaled(1.25).base_filters == 8
    twin = arch.twin("mixed_bfloat16")
    assert (twin.precision, twin.encoder_weights, twin.size) == ("mixed_bfloat16", "none", arch.size)


def test_train_precision_auto_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch):
    # Emulated bf16 trains the real-80 U-Net 9x slower than float32 on a CPU
    # without bf16 units (docs/performance.md): auto picks what inference.precision: auto would.
    from carmask.planning import settings

    block = {"architecture": "unet", "input_height": 32, "input_width": 48, "channels": 3, "train_precision": "auto"}
    monkeypatch.setattr(settings, "gpu_usable", lambda: False)
    for has_bf16, want in ((True, "mixed_bfloat16"), (False, "float32")):
        monkeypatch.setattr(settings, "cpu_has_bf16", lambda: has_bf16)
        assert Architecture.from_config(block).precision == want
    monkeypatch.setattr(settings, "gpu_usable", lambda: True)
    assert Architecture.from_config(block).precision == "mixed_float16"


def test_the_schema_and_the_code_allow_the_same_values():
    enum = lambda key: MODEL_SCHEMA[key]["enum"]  # noqa: E731
    assert set(enum("architecture")) == set(ARCHITECTURE_NAMES) == set(ARCHITECTURES)
    assert set(enum("loss")) == set(LOSS_NAMES) == set(LOSS_FUNCTIONS)
    assert set(enum("lr_schedule")) == set(LR_SCHEDULES)
    assert set(enum("monitor")) == set(MONITORS)
    assert set(enum("train_precision")) == {"auto", *PRECISIONS}
    assert set(SCHEMA["properties"]["inference"]["properties"]["precision"]["enum"]) == {"auto", *PRECISIONS}
    inference = SCHEMA["properties"]["inference"]["properties"]
    assert set(inference["tta"]["enum"]) == set(TTA_MODES)


def test_the_schema_defaults_are_the_code_defaults():
    # A key the schema fills in must get the same value when a library caller
    # leaves it out: one default per setting.
    for part in (Architecture, Training, Augmentation):
        for field in dataclasses.fields(part):
            key = {"name": "architecture", "precision": "train_precision"}.get(field.name, field.name)
            if "default" in MODEL_SCHEMA.get(key, {}):
                assert MODEL_SCHEMA[key]["default"] == field.default, key
