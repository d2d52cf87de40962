"""Rule report_model: per-view Dice plot and best/worst galleries."""

from carmask.logs import setup
from carmask.stages.report import gallery, plot_dice_per_view

setup(snakemake.log[0])
plot_dice_per_view(snakemake.input.metrics, snakemake.output.per_view)
gallery(
    snakemake.input.shards,
    snakemake.input.val,
    snakemake.input.metrics,
    snakemake.output.best,
    snakemake.output.worst,
    n=snakemake.params.gallery_size,
)
