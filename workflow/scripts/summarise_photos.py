"""Rule summarise_photos: the shards' rows as the folder's photos.csv."""

from carmask.logs import setup
from carmask.stages.photo_folder import merge_rows

log = setup(snakemake.log[0])
table = merge_rows(snakemake.input.rows, snakemake.output[0])
failed = (table["status"] != "ok").sum()
log.info("%d files: %d cut out, %d failed, %d flagged", len(table), len(table) - failed, failed, table["flagged"].sum())
