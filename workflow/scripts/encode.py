"""Rule encode: full-size masks to Kaggle RLE for one shard of a model or an ensemble."""

from carmask.stages.encode import encode_shard
from carmask.logs import setup
from carmask.stages.threshold import resolve

setup(snakemake.log[0])
encode_shard(
    list(snakemake.input.predictions),
    list(snakemake.params.weights.values()),
    snakemake.input.manifest,
    snakemake.output[0],
    threshold=resolve(snakemake.params.threshold, snakemake.input.get("threshold")),
    refine=snakemake.params.refine,
)
