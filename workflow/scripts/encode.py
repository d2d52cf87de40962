"""Rule encode: full-size masks to Kaggle RLE for one shard."""

from carmask.encode import encode_shard
from carmask.logs import setup

setup(snakemake.log[0])
encode_shard(
    snakemake.input.predictions,
    snakemake.input.manifest,
    snakemake.output[0],
    threshold=snakemake.params.threshold,
)
