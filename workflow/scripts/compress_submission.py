"""Rule compress_submission: results/submission.csv.gz for upload."""

from carmask.logs import setup
from carmask.stages.submission import gzip_file

setup(snakemake.log[0])
gzip_file(snakemake.input.csv, snakemake.output[0])
