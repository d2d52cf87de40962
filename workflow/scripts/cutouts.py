"""Rule cutouts: RGBA cutouts and composites of test images."""

from carmask.stages.cutouts import make_cutouts
from carmask.logs import setup

setup(snakemake.log[0])
make_cutouts(
    snakemake.input.shards,
    snakemake.input.manifest,
    n_images=snakemake.params.n_images,
    background=snakemake.params.background,
    cutout_dir=snakemake.output.cutouts,
    composite_dir=snakemake.output.composites,
)
