"""Rule train: train one model and write its files."""

from carmask.logs import setup
from carmask.train import train_model

setup(snakemake.log[0])
train_model(
    snakemake.wildcards.model,
    snakemake.input.train,
    snakemake.input.val,
    cfg=dict(snakemake.params.cfg),
    model_path=snakemake.output.model,
    training_path=snakemake.output.training,
    history_path=snakemake.output.history,
    curves_path=snakemake.output.curves,
    summary_path=snakemake.output.summary,
    threads=snakemake.threads,
)
