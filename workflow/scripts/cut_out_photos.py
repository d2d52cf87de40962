"""Rule cut_out_photos: masks, cutouts and composites of one shard of the user's photos."""

from carmask.logs import setup
from carmask.stages.photo_folder import cut_out_shard, options_from_config

setup(snakemake.log[0])
cut_out_shard(
    snakemake.input.model,
    snakemake.input.listing,
    snakemake.params.dir,
    snakemake.params.out,
    options_from_config(snakemake.params.options),
    shard=int(snakemake.wildcards.shard),
    shards=snakemake.params.shards,
    rows_out=snakemake.output[0],
    threads=snakemake.threads,
)
