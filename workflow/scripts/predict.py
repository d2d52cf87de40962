"""Rule predict: uint8 probabilities at model size for one shard."""

from carmask.logs import setup
from carmask.network.inference import predict_shard
from carmask.network.spec import ModelSpec, Prediction

setup(snakemake.log[0])
predict_shard(
    snakemake.input.model,
    snakemake.input.manifest,
    snakemake.output.predictions,
    ModelSpec.from_config(snakemake.params.cfg).architecture,
    Prediction(batch_size=snakemake.params.batch_size, tta=snakemake.params.tta, precision=snakemake.params.precision),
    shard=int(snakemake.wildcards.shard),
    shards=snakemake.params.shards,
    threads=snakemake.threads,
    timing_out=snakemake.output.timing,
)
