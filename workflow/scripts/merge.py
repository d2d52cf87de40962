"""Rule merge: one validated submission CSV from the RLE shards."""

from carmask.logs import setup
from carmask.submission import merge_shards

setup(snakemake.log[0])
merge_shards(snakemake.input.shards, snakemake.input.manifest, snakemake.output.csv)
