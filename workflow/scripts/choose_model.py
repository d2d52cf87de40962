"""Rule choose_model: the model with the highest validation Dice."""

from carmask.logs import setup
from carmask.stages.submission import choose_best

setup(snakemake.log[0])
choose_best(dict(zip(snakemake.params.models, snakemake.input.metrics)), snakemake.output.choice)
