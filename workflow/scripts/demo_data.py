"""Rule demo_data: generate the synthetic Kaggle-layout dataset."""

from carmask.demo.dataset import generate
from carmask.files import atomic_dir
from carmask.logs import setup

setup(snakemake.log[0])
with atomic_dir(snakemake.output.folder) as folder:
    generate(folder, **snakemake.params.demo)
