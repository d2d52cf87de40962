"""Rule train: train one model and write its files."""

from carmask.logs import setup
from carmask.network.spec import ModelSpec
from carmask.network.training import train_model

setup(snakemake.log[0])
train_model(
    snakemake.wildcards.model,
    snakemake.input.train,
    snakemake.input.val,
    ModelSpec.from_config(snakemake.params.cfg),
    model_path=snakemake.output.model,
    training_path=snakemake.output.training,
    history_path=snakemake.output.history,
    curves_path=snakemake.output.curves,
    summary_path=snakemake.output.summary,
    threads=snakemake.threads,
)
