# Parse-time Python of the workflow: config validation and small input functions.
import re
from functools import cache
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

from carmask.planning.layout import SIDES
from carmask.planning.settings import (
    names_a_file,
    normalise_weights,
    resolve_batch_size,
    resolve_precision,
)
from carmask.planning.tracking import (
    code_digest,
    data_fingerprint,
    tree_fingerprint,
    untracked_checkout,
)

validate(config, schema="../schemas/config.schema.yaml")

MODELS = config["models_to_run"]
_unknown = [m for m in MODELS if m not in config["models"]]
if _unknown:
    raise ValueError(
        f"config: models_to_run names {_unknown}, which are not blocks under "
        f"'models' (defined: {sorted(config['models'])})"
    )
# The ensemble, when its block names models, is scored, reported and
# submittable like one more model: an "entry" is a model or the ensemble.
ENSEMBLE = config["ensemble"]["models"]
ENTRIES = MODELS + (["ensemble"] if ENSEMBLE else [])
if "ensemble" in config["models"]:
    raise ValueError(
        "config: 'ensemble' names the ensemble of models_to_run; call the model block something else"
    )
_outside = [m for m in ENSEMBLE if m not in MODELS]
if _outside or len(set(ENSEMBLE)) != len(ENSEMBLE) or len(ENSEMBLE) == 1:
    raise ValueError(
        f"config: ensemble.models {ENSEMBLE} must be empty (no ensemble) or name two or more "
        f"distinct models of models_to_run {MODELS}"
    )
if config["ensemble"]["weights"] is not None and not ENSEMBLE:
    raise ValueError(
        "config: ensemble.weights is set but ensemble.models is empty; name the models the weights are for"
    )
if config["submission_model"] not in ENTRIES + ["best"]:
    raise ValueError(
        f"config: submission_model is {config['submission_model']!r}; it must be "
        f"'best' or one of {ENTRIES}"
        + ("" if ENSEMBLE else " ('ensemble' needs models under ensemble.models)")
    )
ENSEMBLE_WEIGHTS = (
    normalise_weights(config["ensemble"]["weights"], len(ENSEMBLE)) if ENSEMBLE else []
)
TUNED = config["inference"]["threshold"] == "auto"
# `auto` resolved here, on the machine that plans the run, and passed to the
# predict jobs as a parameter: a run planned on a bf16 CPU and later on a GPU
# predicts again, and what a prediction was computed in is on record.
PRECISION = resolve_precision(config["inference"]["precision"])

# Validation predictions go through the same predict/encode rules as the test
# set, as one shard: the split is thousands of images at most. So do the
# training photos' predictions, which the learned refinement trains on.
SHARDS = {"test": config["inference"]["shards"], "val": 1, "train": 1}
LEARNED_REFINE = config["inference"]["refine"] == "learned"
# The learned refinement's encode jobs load TensorFlow; the others never import it.
ENCODE_SCRIPT = "encode_learned" if LEARNED_REFINE else "encode"


def one_of(names):
    """A wildcard constraint matching exactly one of ``names`` (regex characters taken literally)."""
    return "|".join(re.escape(name) for name in names)


wildcard_constraints:
    model=one_of(MODELS),
    entry=one_of(ENTRIES),
    subset="test|val|train",
    shard=r"\d+",


def data_dir():
    """The Kaggle-layout folder: the user's, or the generated demo."""
    return config["data_dir"] or "results/demo"


def get_data_input(wildcards):
    """The demo folder as an input, so it is generated first.

    The user's folder is no input: Snakemake would see only the folder's own
    mtime. Its files are watched through the fingerprint parameter instead.
    """
    return [] if config["data_dir"] else rules.demo_data.output.folder


@cache
def get_data_fingerprint(side):
    """Digest of the files one manifest side reads from the user's folder ('' for the demo).

    A file added, removed or rewritten there changes it, and so reruns that
    side's manifest and what depends on it. The demo is a workflow output
    with its own rule, so it needs none.
    """
    if not config["data_dir"]:
        return ""
    return data_fingerprint(config["data_dir"], SIDES[side])


@cache
def code(script):
    """Digest of the package code that workflow/scripts/<script>.py imports, as a parameter.

    Snakemake itself tracks only the script: with this, editing a module the
    script imports (directly or not) reruns the rule, and nothing else does.
    """
    return code_digest(Path(workflow.basedir) / "workflow" / "scripts" / f"{script}.py")


UNTRACKED = untracked_checkout(workflow.basedir)
if UNTRACKED:
    logger.warning(UNTRACKED)


def config_path(section, key):
    """A path from the config that a requested rule needs, with a clear error if unset."""
    value = config[section][key]
    if not value:
        raise ValueError(
            f"config: set {section}.{key} to use this target (in config.yaml or a --configfile layered on it)"
        )
    return value


def model_block(name):
    """A model's config block, keys sorted: its order in a YAML file is no change.

    ``train_precision: auto`` is resolved here, like ``inference.precision``:
    what the model trained in is on record, and planning on another machine
    that resolves it differently trains again.
    """
    block = dict(config["models"][name])
    block["train_precision"] = resolve_precision(
        block.get("train_precision", "float32")
    )
    return dict(sorted(block.items()))


def get_model_block(wildcards):
    """The model's config block (model_block)."""
    return model_block(wildcards.model)


def get_batch_size(wildcards):
    """Photos per predict batch for the model (``auto``: by precision and input size)."""
    block = config["models"][wildcards.model]
    size = (block["input_height"], block["input_width"])
    return resolve_batch_size(config["inference"]["batch_size"], PRECISION, size)


def get_encoder_weights_input(wildcards):
    """A model's encoder weights file as an input, when its config names one.

    Replacing the file then retrains the model, and a missing one stops the
    run before any job starts; ``imagenet`` and ``none`` name no file here.
    """
    weights = config["models"][wildcards.model]["encoder_weights"]
    return (
        {"encoder_weights": weights}
        if names_a_file(weights, ("imagenet", "none"))
        else {}
    )


def get_background_input(wildcards):
    """The cutouts' background image as an input, when it is an image and not a colour."""
    background = config["cutouts"]["background"]
    return {"background": background} if names_a_file(background) else {}


def members(entry):
    """The models whose predictions make an entry: the ensemble's, or the model itself."""
    return ENSEMBLE if entry == "ensemble" else [entry]


def get_weights(wildcards):
    """Each member's share of an entry's mean probability, by name (1.0 for a single model).

    By name, not as a list: swapping two models of the ensemble (and not their
    weights) must change this parameter, and so rerun what depends on it.
    """
    entry = wildcards.entry
    return dict(zip(members(entry), ENSEMBLE_WEIGHTS if entry == "ensemble" else [1.0]))


def get_member_predictions(wildcards):
    """The predictions shard (``wildcards.shard``, or the validation one) of each member.

    One file per member, in ``members`` order: the validation split is one
    shard (``SHARDS["val"]``), so tuning reads the members side by side.
    """
    shard = getattr(wildcards, "shard", "0")
    return expand(
        "results/predictions/{member}/{subset}/shard-{shard}.parquet",
        member=members(wildcards.entry),
        subset=getattr(wildcards, "subset", "val"),
        shard=shard,
    )


def get_refiner_input(wildcards):
    """The entry's trained refinement network when ``inference.refine`` is learned, else nothing."""
    return (
        {"refiner": f"results/models/{wildcards.entry}/refiner.keras"}
        if LEARNED_REFINE
        else {}
    )


def get_refiner_block(wildcards):
    """The ``refiner`` block, keys sorted (see model_block)."""
    return dict(sorted(config["refiner"].items()))


def get_threshold_input(wildcards):
    """The tuned threshold of the entry when ``inference.threshold`` is auto, else nothing."""
    return {"threshold": f"results/thresholds/{wildcards.entry}.json"} if TUNED else {}


def get_member_blocks(wildcards):
    """The members' config blocks (model_block)."""
    return {m: model_block(m) for m in members(wildcards.entry)}


def get_items_table(wildcards):
    """The table of images to predict for a subset: the test manifest or the validation split."""
    return {
        "test": "results/manifest/test.parquet",
        "val": "results/split/val.parquet",
        "train": "results/split/train.parquet",
    }[wildcards.subset]


def get_shards(kind, name, subset, ext="parquet"):
    """All shard files of one subset: a model's predictions (``kind`` predictions) or an entry's RLE (rle).

    ``ext`` "timing.json" names the predict jobs' timing files instead.
    """
    return expand(
        "results/{kind}/{name}/{subset}/shard-{shard}.{ext}",
        kind=kind,
        name=name,
        subset=subset,
        shard=range(SHARDS[subset]),
        ext=ext,
    )


def get_val_timings(model):
    """The timing files of a model's validation predict jobs."""
    return get_shards("predictions", model, "val", "timing.json")


def submission_candidates():
    """Entries whose test masks the merge may take: the named one, or every one for 'best'.

    With 'best' every model's test set is predicted, so the merge depends on
    files known when the workflow is planned: a changed choice (a new model,
    a retrained one) always reruns it, and never leaves a stale submission.
    """
    name = config["submission_model"]
    return ENTRIES if name == "best" else [name]


def get_merge_input(wildcards):
    """RLE shards and validation metrics of the candidate models, and the choice among them."""
    models = submission_candidates()
    inputs = {
        "shards": [s for m in models for s in get_shards("rle", m, "test")],
        "manifest": "results/manifest/test.parquet",
        "metrics": expand("results/metrics/{entry}.json", entry=models),
        "timings": [
            t
            for entry in models
            for m in members(entry)
            for t in get_shards("predictions", m, "test", "timing.json")
        ],
    }
    if config["submission_model"] == "best":
        inputs["choice"] = "results/metrics/best_model.txt"
    return inputs


def get_final_output():
    """What `snakemake` with no target builds."""
    gz = ["results/submission.csv.gz"] if config["inference"]["gzip"] else []
    per_model = expand(
        [
            "results/metrics/{entry}.json",
            "results/report/{entry}/dice_per_view.png",
            "results/report/{entry}/gallery_best.png",
            "results/report/{entry}/gallery_worst.png",
            "results/cutouts/{entry}",
        ],
        entry=ENTRIES,
    )
    # Each trained model's card: `carmask cutout --model results/` needs it.
    cards = expand("results/models/{model}/card.json", model=MODELS)
    return [
        "results/submission.csv",
        *gz,
        "results/report/models.csv",
        *per_model,
        *cards,
    ]


def get_model_threshold_input(wildcards):
    """The model's tuned threshold when ``inference.threshold`` is auto, else nothing."""
    return {"threshold": f"results/thresholds/{wildcards.model}.json"} if TUNED else {}


def photos_model():
    """The trained model the ``photos`` target uses: ``photos.model``, else the submission model."""
    name = config["photos"]["model"] or config["submission_model"]
    if name not in MODELS:
        if config["photos"]["dir"]:
            raise ValueError(
                f"config: photos.model must name a trained model of models_to_run {MODELS}; "
                f"it is {name!r}"
                + ("" if config["photos"]["model"] else " (from submission_model)")
            )
        return MODELS[0]  # no photos configured: the rules are never run
    return name


PHOTOS_MODEL = photos_model()


def photos_out():
    """The folder the ``photos`` target writes to."""
    return config["photos"]["out"] or "results/photos/out"


def photos_summary():
    """The ``photos`` target's per-photo CSV."""
    return f"{photos_out()}/photos.csv"


def photos_fingerprint():
    """A digest of the photo folder's files (none configured: nothing to digest)."""
    return (
        tree_fingerprint(config["photos"]["dir"]) if config["photos"]["dir"] else "none"
    )


def photo_options():
    """The settings of the ``photos`` block that change the photos' files."""
    return {
        k: config["photos"][k] for k in ("background", "soft_edge", "trim", "aspect")
    }
