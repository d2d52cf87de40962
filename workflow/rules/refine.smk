# The learned refinement (inference.refine: learned): a small full-resolution
# network trained on the training photos' predictions, per entry.


rule train_refiner:
    input:
        predictions=lambda wildcards: expand(
            "results/predictions/{member}/train/shard-0.parquet",
            member=members(wildcards.entry),
        ),
        train="results/split/train.parquet",
    output:
        model="results/models/{entry}/refiner.keras",
        facts="results/models/{entry}/refiner.json",
    log:
        "logs/train_refiner/{entry}.log",
    benchmark:
        "logs/benchmarks/train_refiner/{entry}.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        code=code("train_refiner"),
        cfg=get_refiner_block,
        weights=get_weights,
    script:
        "../scripts/train_refiner.py"
