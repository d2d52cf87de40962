"""Rule list_photos: every file of the user's photo folder, sorted."""

from carmask.logs import setup
from carmask.stages.photo_folder import list_photos

log = setup(snakemake.log[0])
log.info("%d files listed", list_photos(snakemake.params.dir, snakemake.params.out, snakemake.output[0]))
