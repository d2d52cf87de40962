"""Rule evaluate: full-resolution validation Dice of one model."""

from carmask.evaluate import evaluate_model
from carmask.logs import setup

setup(snakemake.log[0])
evaluate_model(
    snakemake.input.shards,
    snakemake.input.val,
    cfg=dict(snakemake.params.cfg),
    threshold=snakemake.params.threshold,
    training_path=snakemake.input.training,
    timing_paths=snakemake.input.timings,
    out_json=snakemake.output.full,
    out_model_json=snakemake.output.model,
)
