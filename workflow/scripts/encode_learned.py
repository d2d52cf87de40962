"""Rule encode with inference.refine learned: the entry's trained refiner loaded, then the same job as rule encode's script."""

from carmask.logs import setup
from carmask.network import runtime
from carmask.network.refiner import Refiner
from carmask.stages.encode import encode_job

setup(snakemake.log[0])
runtime.configure(snakemake.threads)
encode_job(snakemake.input, snakemake.params, snakemake.output[0], Refiner.load(snakemake.input.refiner).mask)
