"""config.yaml validates against the schema; bad values are named by key."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())


def test_shipped_configs_are_valid():
    validate(copy.deepcopy(CONFIG), SCHEMA)
    assert set(CONFIG["models"]) == {"mobilenetv2_pix2pix", "mobilenetv2_pix2pix_tuned", "vgg19_pix2pix", "unet"}
    tiny = copy.deepcopy(CONFIG)
    tiny.update(yaml.safe_load((ROOT / "tests" / "e2e" / "tiny.yaml").read_text()))
    validate(tiny, SCHEMA)


def test_real_sample_config_layers_onto_config_yaml_and_is_valid():
    # as `--configfile config.yaml config/real-sample.yaml` merges them: nested keys deep-merged
    real = yaml.safe_load((ROOT / "config" / "real-sample.yaml").read_text())
    merged = copy.deepcopy(CONFIG)
    update_config(merged, real)
    validate(merged, SCHEMA)
    block = merged["models"]["mobilenetv2_pix2pix_tuned"]
    assert block["architecture"] == "mobilenetv2_pix2pix_tuned" and block["encoder_weights"] == "none"
    assert merged["models_to_run"] == [CONFIG["models_to_run"][0]]  # the default model, as the README says


@pytest.mark.parametrize(
    "path, value, words",
    [
        (("inference", "threshold"), 1.5, ["threshold", "1.5"]),
        (("inference", "shards"), 0, ["shards"]),
        (("split", "val_fraction"), "a lot", ["val_fraction"]),
        (("models", "unet", "architecture"), "resnet", ["architecture", "resnet"]),
        (("models", "unet", "loss"), "focal", ["loss", "focal"]),
        (("manifest", "on_bad_name"), "ignore", ["on_bad_name"]),
        (("models", "unet", "lr_schedule"), "step", ["lr_schedule", "step"]),
        (("models", "unet", "zoom"), 0.9, ["zoom", "0.9"]),
    ],
)
def test_bad_values_name_the_key(path, value, words):
    config = copy.deepcopy(CONFIG)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WorkflowError) as err:
        validate(config, SCHEMA)
    text = str(err.value)
    for word in words:
        assert word in text


def test_unknown_key_is_named():
    config = copy.deepcopy(CONFIG)
    config["inference"]["treshold"] = 0.5
    with pytest.raises(WorkflowError, match="treshold"):
        validate(config, SCHEMA)
