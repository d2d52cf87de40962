"""config/kaggle.yaml plans the whole pipeline on a Kaggle-sized folder (dry run).

The folder holds links named like Kaggle's data: 318 cars x 16 views with
masks, and the 100,064 test photos of the real sample_submission.csv (from
../shared when present; otherwise the same count of generated names). Every
link points at one small file: a dry run reads names, sizes and times only.
"""

from __future__ import annotations

import copy
import os

import pandas as pd
import yaml
from snakemake.utils import update_config, validate

from ..snakemake_runs import ROOT, copy_workflow, planned_jobs, run_snakemake

SAMPLE_SUBMISSION = ROOT.parent / "shared" / "data" / "carvana-sample" / "sample_submission.csv"
N_TEST = 100_064
N_TRAIN_CARS = 318


def kaggle_config() -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config" / "kaggle.yaml").read_text()))
    return config


def kaggle_sized_folder(dest):
    """Kaggle's layout and counts, every file a link to one placeholder."""
    target = dest / "placeholder"
    dest.mkdir(parents=True)
    target.write_bytes(b"x")
    if SAMPLE_SUBMISSION.is_file():
        test = pd.read_csv(SAMPLE_SUBMISSION)["img"].tolist()
    else:
        test = [f"{car:012x}_{view:02d}.jpg" for car in range(N_TEST // 16) for view in range(1, 17)]
    assert len(test) == N_TEST
    train = [f"{0xA00000000000 + car:012x}_{view:02d}" for car in range(N_TRAIN_CARS) for view in range(1, 17)]
    for sub, names in (("test", test), ("train", [f"{n}.jpg" for n in train]), ("train_masks", [f"{n}_mask.gif" for n in train])):
        (dest / sub).mkdir()
        for name in names:
            os.symlink(target, dest / sub / name)
    pd.DataFrame({"img": test, "rle_mask": "1 1"}).to_csv(dest / "sample_submission.csv", index=False)
    return dest


def test_kaggle_config_is_valid_and_is_the_gpu_recipe():
    config = kaggle_config()
    validate(copy.deepcopy(config), str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    block = config["models"][config["submission_model"]]
    # the recipe chosen on the 80 real cars (config/real-80.yaml), scaled for a GPU
    real80 = yaml.safe_load((ROOT / "config" / "real-80.yaml").read_text())["models"]["unet"]
    assert block["architecture"] == "unet" and block["channels"] == 3 and block["train_precision"] == "mixed_float16"
    assert (block["loss"], block["lr_schedule"]) == (real80["loss"], real80["lr_schedule"])
    assert block["input_height"] * 3 == block["input_width"] * 2  # the photos' 3:2
    assert config["inference"]["precision"] == "mixed_float16" and config["inference"]["gzip"]
    assert not config["manifest"]["partial_test"]


def test_kaggle_config_plans_the_full_pipeline_on_a_kaggle_sized_folder(tmp_path):
    data = kaggle_sized_folder(tmp_path / "kaggle")
    work = copy_workflow(tmp_path / "work")
    proc = run_snakemake(
        work, "-n", "--cores", "16", "results/submission.csv.gz",
        "--configfile", "config.yaml", "config/kaggle.yaml", "--config", f"data_dir={data}",
    )
    shards = kaggle_config()["inference"]["shards"]
    # the test set in its shards, the validation cars in one, scored before the merge
    assert planned_jobs(proc) == {
        "manifest_train": 1,
        "manifest_test": 1,
        "split": 1,
        "train": 1,
        "predict": shards + 1,
        "encode": shards + 1,
        "evaluate": 1,
        "merge": 1,
        "compress_submission": 1,
    }
