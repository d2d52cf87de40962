"""Rule manifest: scan and validate the data folder."""

from carmask.logs import setup
from carmask.manifest import write_manifest

setup(snakemake.log[0])
write_manifest(
    snakemake.input.data,
    snakemake.output.train,
    snakemake.output.test,
    on_bad_name=snakemake.params.on_bad_name,
    partial_test=snakemake.params.partial_test,
    threads=snakemake.threads,
)
