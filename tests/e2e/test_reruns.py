"""The rerun matrix: after a change, exactly what depends on it reruns, and nothing stale is left.

One full run on a Kaggle-layout folder outside the workflow (a copy of tiny
demo data, as a user's data folder would be), with two tiny models. Each
change of the table is then dry-run from that state and its plan checked
against what must and must not rerun. The changes users hit most (picking
the best of several models, a new test photo, a fixed mask, an edited
package module) are also run, and the submission they leave must equal,
byte for byte, that of a from-scratch run with the new state.

Package edits go to a copy of ``src/carmask`` put first on PYTHONPATH, so
the repository's own files are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.demo.dataset import generate

from ..snakemake_runs import ROOT, copy_workflow, planned_job_list, run_snakemake

pytestmark = pytest.mark.e2e

TINY_MODEL = (
    "{architecture: unet, input_height: 32, input_width: 48, channels: 3, encoder_weights: none, "
    "freeze_encoder: false, base_filters: 4, loss: bce_dice, epochs: 1, batch_size: 4, "
    "learning_rate: 0.001, patience: 1, flip_lr: true, flip_ud: false, seed: %d}"
)


class State:
    """One configuration of data, package code and config, and the runs made with it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.package = root / "pkg"
        self.config = root / "matrix.yaml"
        self.models: tuple[str, ...] = ()

    def base(self) -> None:
        generate(self.data, n_train_cars=3, n_test_cars=2, views=4, width=192, height=128, seed=0)
        shutil.copytree(ROOT / "src" / "carmask", self.package / "carmask", ignore=shutil.ignore_patterns("__pycache__"))
        self.write_config()

    def write_config(self, models: tuple[str, ...] = ("unet", "unet_b"), submission: str = "unet") -> None:
        self.models = models
        self.config.write_text(
            f"data_dir: {self.data}\n"
            f"models_to_run: [{', '.join(models)}]\n"
            f"submission_model: {submission}\n"
            "models:\n"
            f"  unet_b: {TINY_MODEL % 2}\n"
            f"  unet_c: {TINY_MODEL % 3}\n"
        )

    def targets(self) -> list[str]:
        """The submission and every configured model's validation metrics."""
        return ["results/submission.csv", *(f"results/metrics/{m}.json" for m in self.models)]

    def snakemake(self, workdir: Path, *args: str, layer: str | None = None):
        configs = ["tests/e2e/tiny.yaml", str(self.config)]
        if layer is not None:
            (self.root / "layer.yaml").write_text(layer)
            configs.append(str(self.root / "layer.yaml"))
        # One thread per TensorFlow job lets two tiny jobs share the two cores
        # (the same for incremental and from-scratch runs: threads are part of the arithmetic).
        threads = ("--set-threads", "train=1", "predict=1", "manifest_train=1", "manifest_test=1")
        return run_snakemake(
            workdir, "--cores", "2", *args, *threads, "--configfile", *configs, env={"PYTHONPATH": str(self.package)}
        )

    def plan(self, workdir: Path, layer: str | None = None) -> list[str]:
        """The jobs a dry run of the targets plans, with an optional config layered on the state's."""
        return planned_job_list(self.snakemake(workdir, "-n", *self.targets(), layer=layer))

    def run(self, workdir: Path) -> None:
        self.snakemake(workdir, *self.targets())

    def fresh_submission(self, name: str) -> bytes:
        """The submission of a from-scratch run with the current state."""
        work = copy_workflow(self.root / name)
        self.snakemake(work, "results/submission.csv")
        return (work / "results/submission.csv").read_bytes()


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> tuple[State, Path]:
    state = State(tmp_path_factory.mktemp("matrix"))
    state.base()
    work = copy_workflow(state.root / "work")
    state.run(work)
    return state, work


def rules(jobs: list[str]) -> set[str]:
    return {j.split("[")[0] for j in jobs}


def of_model(jobs: list[str], rule: str, model: str) -> list[str]:
    """The jobs of ``rule`` for a model (train, predict) or an entry (encode, tune_threshold, evaluate, ...)."""
    return [j for j in jobs if j.startswith(f"{rule}[") and re.search(rf"[\[,](model|entry)={re.escape(model)},", j.replace("]", ","))]


@pytest.fixture
def edit(state):
    """Edit a file for a dry run and put it back afterwards, its mtime included (as if never touched)."""
    saved: list[tuple[Path, bytes, os.stat_result]] = []

    def change(path: Path, content: bytes) -> None:
        saved.append((path, path.read_bytes(), path.stat()))
        path.write_bytes(content)

    yield change
    for path, content, st in reversed(saved):
        path.write_bytes(content)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_base_state_has_nothing_to_do(state):
    s, work = state
    assert s.plan(work) == []


def test_threshold_reruns_encode_evaluate_merge(state):
    s, work = state
    jobs = s.plan(work, "inference: {threshold: 0.6}\n")
    assert rules(jobs) == {"encode", "evaluate", "merge"}
    assert len(of_model(jobs, "encode", "unet")) == 3 and len(of_model(jobs, "encode", "unet_b")) == 1  # b: validation only


def test_one_models_epochs_retrain_that_model_only(state):
    s, work = state
    jobs = s.plan(work, "models: {unet_b: {epochs: 2}}\n")
    assert of_model(jobs, "train", "unet_b") == ["train[model=unet_b]"]
    assert not of_model(jobs, "train", "unet")
    assert of_model(jobs, "predict", "unet_b") and of_model(jobs, "evaluate", "unet_b")
    assert not of_model(jobs, "predict", "unet") and not of_model(jobs, "encode", "unet")
    assert "merge" not in rules(jobs)  # unet_b is not the submission model
    assert not rules(jobs) & {"manifest_train", "manifest_test", "split"}


def test_another_trained_model_as_submission_retrains_nothing(state):
    s, work = state
    jobs = s.plan(work, "submission_model: unet_b\n")
    assert "train" not in rules(jobs)
    assert rules(jobs) == {"predict", "encode", "merge"}
    assert sorted(of_model(jobs, "predict", "unet_b")) == ["predict[model=unet_b,subset=test,shard=0]", "predict[model=unet_b,subset=test,shard=1]"]


def test_inference_shards_repredict_the_test_set_only(state):
    s, work = state
    jobs = s.plan(work, "inference: {shards: 3}\n")
    assert rules(jobs) == {"predict", "encode", "merge"}
    assert all("subset=test" in j for j in jobs if j.startswith(("predict", "encode")))
    assert len(of_model(jobs, "predict", "unet")) == 3


def test_tta_setting_repredicts_without_retraining(state):
    s, work = state
    jobs = s.plan(work, "inference: {tta: scale}\n")
    assert rules(jobs) == {"predict", "encode", "evaluate", "merge"}
    assert len(of_model(jobs, "predict", "unet")) == 3 and len(of_model(jobs, "predict", "unet_b")) == 1


def test_the_model_card_follows_the_runs_inference_settings(state):
    s, work = state
    card = "results/models/unet/card.json"
    s.snakemake(work, card)

    def plan(layer: str | None = None) -> set[str]:
        return rules(planned_job_list(s.snakemake(work, "-n", card, layer=layer)))

    assert plan() == set()
    assert plan("inference: {threshold: 0.6}\n") == {"model_card", "encode"}  # the validation masks' range too
    assert plan("inference: {tta: scale}\n") == {"model_card", "predict", "encode"}
    assert plan("report: {gallery_size: 2}\n") == set()
    written = json.loads((work / card).read_text())
    assert written["threshold"] == 0.5 and written["prediction"]["tta"] == "flip"
    assert written["validation"]["photos"] == len(pd.read_parquet(work / "results/split/val.parquet"))


ENSEMBLE = "submission_model: ensemble\nensemble: {models: [unet, unet_b], weights: [3, 1]}\n"


@pytest.fixture(scope="module")
def ensemble_run(state) -> tuple[State, Path, list[str]]:
    """A copy of the base run, then the two trained models' ensemble made the submission (run for real).

    Returns the state, the copy and the jobs its dry run planned.
    """
    s, work = state
    copy = s.root / "ensemble"
    shutil.copytree(work, copy, symlinks=True)
    jobs = s.plan(copy, ENSEMBLE)
    report = ["results/report/ensemble/gallery_worst.png", "results/cutouts/ensemble", "results/report/models.csv"]
    s.snakemake(copy, *s.targets(), "results/metrics/ensemble.json", *report, layer=ENSEMBLE)
    return s, copy, jobs


def test_an_ensemble_of_trained_models_trains_nothing(ensemble_run):
    # unet_b's test set is predicted for the first time (it was validated
    # only); nothing is trained and unet's predictions are reused
    _, _, jobs = ensemble_run
    assert rules(jobs) == {"predict", "encode", "evaluate", "merge"}
    assert sorted(of_model(jobs, "predict", "unet_b")) == [
        "predict[model=unet_b,subset=test,shard=0]",
        "predict[model=unet_b,subset=test,shard=1]",
    ]
    assert of_model(jobs, "predict", "unet") == []
    assert sorted(of_model(jobs, "encode", "ensemble")) == [
        "encode[entry=ensemble,subset=test,shard=0]",
        "encode[entry=ensemble,subset=test,shard=1]",
        "encode[entry=ensemble,subset=val,shard=0]",
    ]
    assert of_model(jobs, "evaluate", "ensemble") == ["evaluate[entry=ensemble]"]


def test_the_ensemble_scores_the_weighted_full_size_mean(ensemble_run):
    # The validation Dice against a direct computation from the two models'
    # prediction files: 3/4 and 1/4 of their plain bilinear maps, cut at 0.5.
    from carmask.masks.images import load_mask
    from carmask.masks.dice import dice
    from carmask.masks.probability_maps import read_probabilities
    from carmask.stages.submission import read_submission, validate_submission

    from ..reference import bilinear

    _, copy, _ = ensemble_run
    metrics = json.loads((copy / "results/metrics/ensemble.json").read_text())
    assert metrics["members"] == {"unet": 0.75, "unet_b": 0.25}
    assert metrics["architecture"].startswith("ensemble of 0.75 unet + 0.25 unet")
    val = pd.read_parquet(copy / "results/split/val.parquet").set_index("img")
    a = dict(read_probabilities(copy / "results/predictions/unet/val/shard-0.parquet"))
    b = dict(read_probabilities(copy / "results/predictions/unet_b/val/shard-0.parquet"))
    scores = {}
    for img, row in val.iterrows():
        size = (int(row["height"]), int(row["width"]))
        mean = 0.75 * bilinear(a[img], size) + 0.25 * bilinear(b[img], size)
        scores[img] = dice(mean > 127.5, load_mask(copy / row["mask_path"]))
    assert metrics["per_image"] == pytest.approx(scores, abs=1e-9)
    rates = [json.loads((copy / f"results/metrics/{m}.json").read_text())["predict_images_per_s"] for m in ("unet", "unet_b")]
    assert metrics["predict_images_per_s"] == pytest.approx(1 / (1 / rates[0] + 1 / rates[1]), abs=0.01)
    table = pd.read_csv(copy / "results/report/models.csv").set_index("model")
    assert table.loc["ensemble", "dice_mean"] == round(metrics["dice_mean"], 5)
    assert table.loc["ensemble", "parameters"] == table.loc["unet", "parameters"] + table.loc["unet_b", "parameters"]
    assert any((copy / "results/cutouts/ensemble").iterdir())
    submission = read_submission(copy / "results/submission.csv")
    validate_submission(submission, pd.read_parquet(copy / "results/manifest/test.parquet"), source="ensemble submission")
    shards = pd.concat([pd.read_parquet(copy / f"results/rle/ensemble/test/shard-{i}.parquet") for i in (0, 1)])
    assert submission["rle_mask"].tolist() == shards["rle_mask"].tolist()


def test_a_changed_ensemble_weight_reencodes_the_ensemble_only(ensemble_run):
    s, copy, _ = ensemble_run
    # the models swapped and the weights not: unet_b now carries 3/4
    swapped = s.plan(copy, ENSEMBLE.replace("[unet, unet_b]", "[unet_b, unet]"))
    assert rules(swapped) == {"encode", "evaluate", "merge"}
    assert all("entry=ensemble" in j for j in swapped if j.startswith(("encode", "evaluate")))
    layer = ENSEMBLE.replace("[3, 1]", "[1, 3]")
    jobs = s.plan(copy, layer)
    assert rules(jobs) == {"encode", "evaluate", "merge"}
    assert all("entry=ensemble" in j for j in jobs if j.startswith(("encode", "evaluate")))
    s.snakemake(copy, *s.targets(), "results/metrics/ensemble.json", layer=layer)
    assert s.plan(copy, layer) == []
    assert json.loads((copy / "results/metrics/ensemble.json").read_text())["members"] == {"unet": 0.25, "unet_b": 0.75}


def test_auto_threshold_is_tuned_per_entry_on_validation_and_used(ensemble_run):
    s, copy, _ = ensemble_run
    layer = ENSEMBLE + "inference: {threshold: auto}\n"
    jobs = s.plan(copy, layer)
    assert rules(jobs) == {"tune_threshold", "encode", "evaluate", "merge"}
    assert sorted(j for j in jobs if j.startswith("tune")) == [
        f"tune_threshold[entry={m}]" for m in ("ensemble", "unet", "unet_b")
    ]
    s.snakemake(copy, *s.targets(), "results/metrics/ensemble.json", layer=layer)
    for entry in ("unet", "unet_b", "ensemble"):
        tuned = json.loads((copy / f"results/thresholds/{entry}.json").read_text())
        metrics = json.loads((copy / f"results/metrics/{entry}.json").read_text())
        assert metrics["threshold"] == tuned["threshold"] and metrics["threshold_tuning"] == tuned
        # the one-pass Dice of the tuning equals scoring the encoded masks
        assert metrics["dice_mean"] == pytest.approx(tuned["dice"], abs=1e-9)
        assert round(tuned["dice"], 6) == max(tuned["curve"].values())


def test_editing_the_architectures_retrains_and_keeps_the_data_stages(state, edit):
    s, work = state
    models_py = s.package / "carmask" / "network" / "architectures.py"
    edit(models_py, models_py.read_bytes() + b"\n# an edit\n")
    jobs = s.plan(work)
    assert set(of_model(jobs, "train", "unet") + of_model(jobs, "train", "unet_b")) == {"train[model=unet]", "train[model=unet_b]"}
    assert {"predict", "encode", "evaluate", "merge"} <= rules(jobs)
    assert not rules(jobs) & {"manifest_train", "manifest_test", "split"}


def test_adding_a_model_with_best_runs_it_chooses_and_merges(state):
    s, work = state
    s.write_config(models=("unet", "unet_b", "unet_c"), submission="best")
    try:
        jobs = s.plan(work)
        assert of_model(jobs, "train", "unet_c") == ["train[model=unet_c]"]
        assert not of_model(jobs, "train", "unet") and not of_model(jobs, "train", "unet_b")
        for rule in ("predict", "encode"):
            assert len(of_model(jobs, rule, "unet_c")) == 3
        assert of_model(jobs, "evaluate", "unet_c") and "choose_model" in rules(jobs) and "merge" in rules(jobs)
        s.run(work)
        assert s.plan(work) == []
        assert (work / "results/submission.csv").read_bytes() == s.fresh_submission("fresh-best")
    finally:
        s.write_config()  # back to the base config for the tests that follow


def test_editing_rle_py_reencodes_without_retraining_or_repredicting(state):
    # The edit stays: the outputs are now those of the edited code, and the
    # states that follow (and their from-scratch runs) include it.
    s, work = state
    rle_py = s.package / "carmask" / "masks" / "rle.py"
    rle_py.write_bytes(rle_py.read_bytes() + b"\n# an edit\n")
    jobs = s.plan(work)
    assert {"encode", "evaluate", "merge"} <= rules(jobs)
    assert not rules(jobs) & {"train", "predict", "manifest_train", "manifest_test", "split"}
    s.run(work)
    assert s.plan(work) == []  # nothing left behind
    assert (work / "results/submission.csv").read_bytes() == s.fresh_submission("fresh-rle")


def test_a_new_test_photo_reruns_the_test_side_only(state):
    s, work = state
    sample = pd.read_csv(s.data / "sample_submission.csv")
    source = s.data / "test" / sample["img"][0]
    new = "fedcba987654_01.jpg"
    shutil.copy(source, s.data / "test" / new)
    pd.concat([sample, pd.DataFrame({"img": [new], "rle_mask": ["1 1"]})]).to_csv(s.data / "sample_submission.csv", index=False)
    jobs = s.plan(work)
    assert "manifest_test" in rules(jobs) and "merge" in rules(jobs)
    assert not rules(jobs) & {"manifest_train", "split", "train", "evaluate"}
    assert {j for j in jobs if j.startswith(("predict", "encode"))} == {
        f"{rule}[{key}=unet,subset=test,shard={i}]" for rule, key in (("predict", "model"), ("encode", "entry")) for i in (0, 1)
    }
    s.run(work)
    assert s.plan(work) == []
    submission = (work / "results/submission.csv").read_bytes()
    assert new in submission.decode()
    assert submission == s.fresh_submission("fresh-test-photo")


def test_a_fixed_mask_retrains_from_the_manifest_on(state):
    s, work = state
    mask_path = sorted((s.data / "train_masks").glob("*.gif"))[0]
    with Image.open(mask_path) as img:
        mask = np.array(img)
        palette = img.getpalette()
    mask[:10, :10] = 1 - mask[:10, :10]  # a corrected corner
    fixed = Image.fromarray(mask.astype(np.uint8), mode="P")
    fixed.putpalette(palette)
    fixed.save(mask_path, format="GIF")
    jobs = s.plan(work)
    assert {"manifest_train", "split", "train", "predict", "encode", "evaluate", "merge"} <= rules(jobs)
    assert "manifest_test" not in rules(jobs)
    s.run(work)
    assert s.plan(work) == []  # nothing left behind
    assert (work / "results/submission.csv").read_bytes() == s.fresh_submission("fresh-mask")


def test_a_fixed_mask_seen_by_an_interrupted_run_still_retrains(state):
    # A run that stops after the manifest (Ctrl-C, a failed job, a target
    # that was only the manifest) leaves a manifest newer than the split.
    # The manifest carries each mask's digest, so its bytes changed and
    # Snakemake, which compares checksums of small inputs, still plans the rest.
    s, work = state
    mask_path = sorted((s.data / "train_masks").glob("*.gif"))[1]
    with Image.open(mask_path) as img:
        mask = np.array(img)
        palette = img.getpalette()
    mask[-8:, -8:] = 1 - mask[-8:, -8:]
    fixed = Image.fromarray(mask.astype(np.uint8), mode="P")
    fixed.putpalette(palette)
    fixed.save(mask_path, format="GIF")
    s.snakemake(work, "results/manifest/train.parquet")  # the interrupted run
    jobs = s.plan(work)
    assert {"split", "train", "predict", "encode", "evaluate", "merge"} <= rules(jobs)
    assert not rules(jobs) & {"manifest_train", "manifest_test"}
    s.run(work)
    assert s.plan(work) == []
    assert (work / "results/submission.csv").read_bytes() == s.fresh_submission("fresh-interrupted-mask")


def test_a_replaced_test_photo_seen_by_an_interrupted_run_still_repredicts(state):
    # Another photo of the same size under the same name: the manifest's
    # names, paths and sizes are the old ones, its size-and-mtime columns not.
    s, work = state
    sample = pd.read_csv(s.data / "sample_submission.csv")
    replaced, other = s.data / "test" / sample["img"][1], s.data / "test" / sample["img"][len(sample) - 1]
    shutil.copy(other, replaced)
    s.snakemake(work, "results/manifest/test.parquet")  # the interrupted run
    jobs = s.plan(work)
    assert {"predict", "encode", "merge"} <= rules(jobs)
    assert {j.split("subset=")[1].split(",")[0] for j in jobs if j.startswith(("predict", "encode"))} == {"test"}
    assert not rules(jobs) & {"manifest_train", "manifest_test", "split", "train", "evaluate"}
    s.run(work)
    assert s.plan(work) == []
    assert (work / "results/submission.csv").read_bytes() == s.fresh_submission("fresh-interrupted-photo")


def test_auto_precision_is_recorded_as_the_policy_it_resolved_to(state):
    # The predict jobs' parameter is the resolved policy, not the word
    # 'auto': naming that policy changes nothing, naming another repredicts
    # both subsets (and a run planned where auto resolves differently does too).
    from carmask.planning.settings import PRECISIONS, resolve_precision

    s, work = state
    resolved = resolve_precision("auto")
    timing = json.loads((work / "results/predictions/unet/val/shard-0.timing.json").read_text())
    assert timing["precision"] == resolved
    assert json.loads((work / "results/metrics/unet.json").read_text())["precision"] == resolved
    assert s.plan(work, layer=f"inference: {{precision: {resolved}}}\n") == []
    other = next(p for p in PRECISIONS if p != resolved)
    jobs = s.plan(work, layer=f"inference: {{precision: {other}}}\n")
    assert set(of_model(jobs, "predict", "unet")) == {
        "predict[model=unet,subset=val,shard=0]", *(f"predict[model=unet,subset=test,shard={i}]" for i in (0, 1))
    }
    assert not rules(jobs) & {"train", "manifest_train", "manifest_test", "split"}


def test_auto_batch_size_and_train_precision_are_recorded_as_what_they_resolved_to(state):
    # inference.batch_size: auto becomes a number of photos per model while
    # planning, and train_precision: auto a policy: the jobs' parameters are
    # those, so the same number or policy named changes nothing.
    from carmask.planning.settings import resolve_batch_size, resolve_precision

    s, work = state
    batch = resolve_batch_size("auto", resolve_precision("auto"), (32, 48))
    assert batch != 4  # the state's batch size
    jobs = s.plan(work, layer="inference: {batch_size: auto}\n")
    assert {"predict[model=unet,subset=val,shard=0]", "predict[model=unet,subset=test,shard=0]"} <= set(jobs)
    assert not rules(jobs) & {"train", "manifest_train", "manifest_test", "split"}
    assert set(s.plan(work, layer=f"inference: {{batch_size: {batch}}}\n")) == set(jobs)
    policy = resolve_precision("auto")
    jobs = s.plan(work, layer="models: {unet: {train_precision: auto}, unet_b: {train_precision: auto}}\n")
    if policy == "float32":  # what the state's models trained in
        assert jobs == []
    else:
        assert {"train[model=unet]", "train[model=unet_b]"} <= set(jobs)


def test_a_touched_script_reruns_nothing_and_an_older_one_restored_does(state, edit):
    s, work = state
    script = work / "workflow" / "scripts" / "encode.py"
    st = script.stat()
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns + 10**12))  # touched, 1000 s later
    try:
        assert s.plan(work) == []
    finally:
        os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    edit(script, script.read_bytes() + b"\n# the version of last month\n")
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns - 30 * 86400 * 10**9))  # older than every output
    jobs = s.plan(work)
    assert {"encode", "evaluate", "merge"} <= rules(jobs)
    assert not rules(jobs) & {"train", "predict", "manifest_train", "manifest_test", "split"}


def test_edge_refinement_reencodes_only_and_runs(state):
    # Last in this module: the run below leaves the state refined.
    s, work = state
    layer = "inference: {refine: guided}\n"
    jobs = s.plan(work, layer=layer)
    assert {"encode", "evaluate", "merge"} <= rules(jobs)
    assert not rules(jobs) & {"train", "predict", "manifest_train", "manifest_test", "split"}
    before = (work / "results/submission.csv").read_bytes()
    s.snakemake(work, *s.targets(), layer=layer)
    assert s.plan(work, layer=layer) == []
    after = (work / "results/submission.csv").read_bytes()
    assert after != before and after.count(b"\n") == before.count(b"\n")  # other outlines, the same photos


def test_learned_refinement_trains_a_refiner_per_entry_and_reencodes_only(state):
    # After the guided run above, and last in this module: the state stays refined.
    s, work = state
    layer = "inference: {refine: learned}\nrefiner: {crop: 32, crops_per_photo: 4, epochs: 1}\n"
    jobs = s.plan(work, layer=layer)
    assert {"train_refiner", "encode", "evaluate", "merge"} <= rules(jobs)
    assert {j for j in jobs if j.startswith("predict[")} == {f"predict[model={m},subset=train,shard=0]" for m in s.models}
    assert {j for j in jobs if j.startswith("train_refiner[")} == {f"train_refiner[entry={m}]" for m in s.models}
    assert not rules(jobs) & {"train", "manifest_train", "manifest_test", "split"}
    before = (work / "results/submission.csv").read_bytes()
    s.snakemake(work, *s.targets(), layer=layer)
    assert s.plan(work, layer=layer) == []
    after = (work / "results/submission.csv").read_bytes()
    assert after != before and after.count(b"\n") == before.count(b"\n")
    facts = json.loads((work / "results/models/unet/refiner.json").read_text())
    assert facts["crops"] > 0 and facts["reach"] == 16
    # a refiner setting retrains the refiners and re-encodes; the networks' predictions stay
    jobs = s.plan(work, layer=layer.replace("epochs: 1", "epochs: 2"))
    assert {"train_refiner", "encode", "evaluate", "merge"} <= rules(jobs)
    assert not rules(jobs) & {"train", "predict", "split"}
