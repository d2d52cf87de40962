"""Rule split: train/validation split grouped by car."""

from carmask.logs import setup
from carmask.stages.split import write_split

setup(snakemake.log[0])
write_split(
    snakemake.input.train,
    snakemake.output.train,
    snakemake.output.val,
    val_fraction=snakemake.params.val_fraction,
    seed=snakemake.params.seed,
    train_cars=snakemake.params.train_cars,
)
