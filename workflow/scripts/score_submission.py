"""Rule score_submission: mean Dice of any submission CSV against ground truth."""

from carmask.stages.evaluate import score_submission
from carmask.files import write_json
from carmask.logs import setup

setup(snakemake.log[0])
write_json(
    score_submission(snakemake.input.submission, snakemake.input.truth, size=tuple(snakemake.params.size)),
    snakemake.output[0],
)
