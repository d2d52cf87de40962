"""Rule train: train one model and write its files."""

from carmask.logs import setup
from carmask.train import train_model

setup(snakemake.log[0])
train_model(
    snakemake.wildcards.model,
    snakemake.input.train,
    snakemake.input.val,
    cfg=dict(snakemake.params.cfg),
    outputs=dict(snakemake.output.items()),
    threads=snakemake.threads,
)
