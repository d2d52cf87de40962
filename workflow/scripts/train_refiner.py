"""Rule train_refiner: train an entry's learned refinement on its training photos' predictions."""

from carmask.logs import setup
from carmask.network.refiner import RefinerSpec, train_refiner

setup(snakemake.log[0])
train_refiner(
    snakemake.input.train,
    list(snakemake.input.predictions),
    list(snakemake.params.weights.values()),
    RefinerSpec.from_config(snakemake.params.cfg),
    model_path=snakemake.output.model,
    facts_path=snakemake.output.facts,
    threads=snakemake.threads,
)
