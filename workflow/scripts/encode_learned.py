"""Rule encode with inference.refine learned: loads the entry's trained refiner, then encodes as rule encode."""

from carmask.logs import setup
from carmask.network import runtime
from carmask.network.refiner import Refiner
from carmask.stages.encode import encode_shard
from carmask.stages.threshold import resolve

setup(snakemake.log[0])
runtime.configure(snakemake.threads)
encode_shard(
    list(snakemake.input.predictions),
    list(snakemake.params.weights.values()),
    snakemake.input.manifest,
    snakemake.output[0],
    threshold=resolve(snakemake.params.threshold, snakemake.input.get("threshold")),
    refine=snakemake.params.refine,
    refine_band=Refiner.load(snakemake.input.refiner).mask,
)
