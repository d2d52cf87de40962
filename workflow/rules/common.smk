# Parse-time Python of the workflow: config validation and small input functions.
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

MODELS = config["models_to_run"]
_unknown = [m for m in MODELS if m not in config["models"]]
if _unknown:
    raise ValueError(
        f"config: models_to_run names {_unknown}, which are not blocks under "
        f"'models' (defined: {sorted(config['models'])})"
    )
if config["submission_model"] not in MODELS + ["best"]:
    raise ValueError(
        f"config: submission_model is {config['submission_model']!r}; it must be "
        f"'best' or one of models_to_run {MODELS}"
    )

# Validation predictions go through the same predict/encode rules as the test
# set, as one shard: the split is thousands of images at most.
SHARDS = {"test": config["inference"]["shards"], "val": 1}


wildcard_constraints:
    model="|".join(MODELS),
    subset="test|val",
    shard=r"\d+",


def data_dir():
    """The Kaggle-layout folder: the user's, or the generated demo."""
    return config["data_dir"] or "results/demo"


def get_data_input(wildcards):
    """The data folder as an input, so the demo is generated when needed."""
    return rules.demo_data.output.folder if not config["data_dir"] else data_dir()


def config_path(section, key):
    """A path from the config that a requested rule needs, with a clear error if unset."""
    value = config[section][key]
    if not value:
        raise ValueError(
            f"config: set {section}.{key} to use this target (in config.yaml or a --configfile layered on it)"
        )
    return value


def get_items(wildcards):
    """Images to predict for a subset: the test manifest or the validation split."""
    return {
        "test": "results/manifest/test.parquet",
        "val": "results/split/val.parquet",
    }[wildcards.subset]


def get_rle_shards(model, subset):
    """All RLE shard files of one model and subset."""
    return expand(
        "results/rle/{model}/{subset}/shard-{shard}.parquet",
        model=model,
        subset=subset,
        shard=range(SHARDS[subset]),
    )


def get_submission_model(wildcards=None):
    """The configured submission model; 'best' waits for the choose_model checkpoint."""
    name = config["submission_model"]
    if name != "best":
        return name
    with checkpoints.choose_model.get().output.choice.open() as f:
        return f.read().strip()


def get_merge_input(wildcards):
    """RLE shards and validation metrics of the submission model."""
    model = get_submission_model()
    return {
        "shards": get_rle_shards(model, "test"),
        "manifest": "results/manifest/test.parquet",
        "metrics": f"results/metrics/{model}.json",
    }


def get_final_output():
    """What `snakemake` with no target builds."""
    gz = ["results/submission.csv.gz"] if config["inference"]["gzip"] else []
    per_model = expand(
        [
            "results/metrics/{model}.json",
            "results/report/{model}/dice_per_view.png",
            "results/report/{model}/gallery_best.png",
            "results/report/{model}/gallery_worst.png",
            "results/cutouts/{model}",
        ],
        model=MODELS,
    )
    return ["results/submission.csv", *gz, "results/report/models.csv", *per_model]
