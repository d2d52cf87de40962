#!/usr/bin/env bash
# Run by Snakemake after it creates envs/carmask.yaml's environment: the rule
# scripts import the carmask package, installed here from the workflow's
# checkout (Snakemake runs this from the working directory, the repo root).
set -euo pipefail
python -m pip install --no-deps -e .
