# carmask: full-resolution car masks for the Kaggle Carvana challenge.
#   snakemake --cores 8 results/submission.csv
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/refine.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/photos.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


# `snakemake photos`: a folder of photos through the run's model (docs/photos.md).
rule photos:
    input:
        photos_summary(),
