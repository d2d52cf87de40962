"""Rule evaluate: full-resolution validation Dice of one model or of the ensemble."""

from carmask.stages.evaluate import evaluate_model
from carmask.logs import setup
from carmask.stages.threshold import resolve

setup(snakemake.log[0])
tuned = snakemake.input.get("threshold")
evaluate_model(
    snakemake.input.shards,
    snakemake.input.val,
    cfgs={name: dict(cfg) for name, cfg in snakemake.params.cfgs.items()},
    threshold=resolve(snakemake.params.threshold, tuned),
    training_paths=list(snakemake.input.training),
    timing_paths=snakemake.params.timings,
    out_json=snakemake.output.metrics,
    weights=list(snakemake.params.weights.values()),
    tuned_json=tuned,
)
