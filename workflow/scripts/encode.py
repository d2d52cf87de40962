"""Rule encode: full-size masks to Kaggle RLE for one shard of a model or an ensemble."""

from carmask.logs import setup
from carmask.stages.encode import encode_job

setup(snakemake.log[0])
encode_job(snakemake.input, snakemake.params, snakemake.output[0])
