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
    update_config(tiny, yaml.safe_load((ROOT / "tests" / "e2e" / "tiny.yaml").read_text()))  # layered as --configfile does
    validate(tiny, SCHEMA)


def test_real_sample_config_layers_onto_config_yaml_and_is_valid():
    # as `--configfile config.yaml config/real-sample.yaml` merges them: nested keys deep-merged
    real = yaml.safe_load((ROOT / "config" / "real-sample.yaml").read_text())
    merged = copy.deepcopy(CONFIG)
    update_config(merged, real)
    validate(merged, SCHEMA)
    block = merged["models"]["mobilenetv2_pix2pix_tuned"]
    assert block["architecture"] == "mobilenetv2_pix2pix_tuned" and block["encoder_weights"] == "none"
    assert merged["models_to_run"] == ["mobilenetv2_pix2pix_tuned"]  # the model docs/real-photos.md measures


EIGHTY = ROOT.parent / "shared" / "data" / "carvana-80"


def test_real_80_config_layers_onto_config_yaml_and_is_valid():
    real = yaml.safe_load((ROOT / "config" / "real-80.yaml").read_text())
    merged = copy.deepcopy(CONFIG)
    update_config(merged, real)
    validate(merged, SCHEMA)
    assert merged["data_dir"] == "../shared/data/carvana-80" and merged["manifest"]["partial_test"]
    block = merged["models"][merged["submission_model"]]
    assert block["architecture"] == "unet" and block["channels"] == 3
    assert (block["input_height"], block["input_width"]) == (192, 288) and block["train_precision"] == "auto"
    assert (block["loss"], block["lr_schedule"]) == ("edge_bce_dice", "cosine")
    assert merged["inference"]["refine"] == "learned"
    assert merged["split"]["train_cars"] is None  # all 68; the learning curve sets fewer


def test_real_80_ensemble_layer_trains_two_models_and_ensembles_them():
    merged = copy.deepcopy(CONFIG)
    for name in ("real-80.yaml", "real-80-ensemble.yaml"):
        update_config(merged, yaml.safe_load((ROOT / "config" / name).read_text()))
    validate(merged, SCHEMA)
    assert merged["ensemble"]["models"] == merged["models_to_run"] and len(merged["models_to_run"]) == 2
    blocks = [merged["models"][m] for m in merged["models_to_run"]]
    assert {(b["architecture"], b["channels"]) for b in blocks} == {("mobilenetv2_pix2pix_tuned", 3), ("mobilenetv2_pix2pix", 3)}
    assert {(b["input_height"], b["input_width"], b["epochs"], b["zoom"]) for b in blocks} == {(128, 192, 14, 0.2)}


def test_default_model_is_the_real_80_recipe_at_demo_size():
    merged = copy.deepcopy(CONFIG)
    validate(merged, SCHEMA)
    real = yaml.safe_load((ROOT / "config" / "real-80.yaml").read_text())["models"]["unet"]
    block = merged["models"]["unet"]
    assert merged["models_to_run"] == [merged["submission_model"]] == ["unet"] and merged["data_dir"] is None
    for key in ("channels", "base_filters", "loss", "lr_schedule", "learning_rate", "batch_size"):
        assert block[key] == real[key], key
    assert (block["input_height"], block["input_width"], block["epochs"]) == (96, 144, 12)  # the demo's size and budget
    assert block["train_precision"] == "float32"  # portable: bf16 only pays on CPUs with bf16 units


@pytest.mark.skipif(not (EIGHTY / "train").is_dir(), reason=f"the 80 real cars are not at {EIGHTY}")
def test_real_80_split_validates_12_cars_and_trains_68():
    # the split the README's figures and the learning curve are measured on
    import pandas as pd

    from carmask.stages.split import split_by_car

    real = yaml.safe_load((ROOT / "config" / "real-80.yaml").read_text())["split"]
    names = sorted(p.name for p in (EIGHTY / "train").glob("*.jpg"))
    frame = pd.DataFrame({"img": names, "car": [n[:12] for n in names]})
    train, val = split_by_car(frame, real["val_fraction"], real["seed"])
    assert (train["car"].nunique(), val["car"].nunique()) == (68, 12)
    assert {"0d3adbbc9a8b", "4f1f065d78ac"} <= set(val["car"])  # two of the sample's validation cars


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
        (("models", "unet", "train_precision"), "float16", ["train_precision", "float16"]),
        (("inference", "precision"), "bf16", ["precision", "bf16"]),
        (("split", "train_cars"), 0, ["train_cars"]),
        (("inference", "threshold"), "tuned", ["threshold", "tuned"]),
        (("inference", "tta"), "rotate", ["tta", "rotate"]),
        (("inference", "batch_size"), "big", ["batch_size", "big"]),
        (("inference", "batch_size"), 0, ["batch_size"]),
        (("ensemble", "weights"), [1, -1], ["weights"]),
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
