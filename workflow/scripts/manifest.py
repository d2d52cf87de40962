"""Rules manifest_train and manifest_test: scan and validate one side of the data folder."""

from carmask.logs import setup
from carmask.stages.manifest import write_manifest

setup(snakemake.log[0])
write_manifest(
    snakemake.params.data_dir,
    snakemake.params.side,
    snakemake.output[0],
    on_bad_name=snakemake.params.on_bad_name,
    partial_test=snakemake.params.get("partial_test", False),  # the test side's setting only
    threads=snakemake.threads,
)
