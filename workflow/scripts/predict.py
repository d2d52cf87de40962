"""Rule predict: uint8 probabilities at model size for one shard."""

from carmask.logs import setup
from carmask.predict import predict_shard

setup(snakemake.log[0])
predict_shard(
    snakemake.input.model,
    snakemake.input.manifest,
    snakemake.output.predictions,
    cfg=dict(snakemake.params.cfg),
    shard=int(snakemake.wildcards.shard),
    shards=snakemake.params.shards,
    batch_size=snakemake.params.batch_size,
    tta=snakemake.params.tta,
    threads=snakemake.threads,
    precision=snakemake.params.precision,
    timing_out=snakemake.output.timing,
)
