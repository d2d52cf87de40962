"""What Snakemake needs while it plans a run: file layout, code and data digests, settings resolved from the config.

Standard library only: the workflow imports these at parse time, before any
job, and on a login node that may lack numpy or TensorFlow."""
