"""Rule merge: one validated submission CSV from the submission model's RLE shards."""

from carmask.logs import setup
from carmask.masks.probability_maps import check_same_precision
from carmask.stages.submission import merge_shards, read_choice

setup(snakemake.log[0])
model = snakemake.params.model
if model == "best":
    model = read_choice(snakemake.input.choice)
check_same_precision(snakemake.params.metrics[model], snakemake.params.timings[model], model)
merge_shards(snakemake.params.shards[model], snakemake.input.manifest, snakemake.output.csv)
