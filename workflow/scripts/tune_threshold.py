"""Rule tune_threshold: the Dice-optimal threshold of a model or an ensemble on the validation photos."""

from carmask.logs import setup
from carmask.stages.threshold_search import tune_threshold

setup(snakemake.log[0])
tune_threshold(list(snakemake.input.predictions), list(snakemake.params.weights.values()), snakemake.input.val, snakemake.output[0])
