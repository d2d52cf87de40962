"""Rule compare_models: one table row per model."""

from carmask.logs import setup
from carmask.stages.report import compare_models

setup(snakemake.log[0])
compare_models(dict(zip(snakemake.params.models, snakemake.input.metrics)), snakemake.output[0])
