rule split:
    input:
        train="results/manifest/train.parquet",
    output:
        train="results/split/train.parquet",
        val="results/split/val.parquet",
    log:
        "logs/split.log",
    benchmark:
        "logs/benchmarks/split.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code("split"),
        val_fraction=config["split"]["val_fraction"],
        seed=config["split"]["seed"],
        train_cars=config["split"]["train_cars"],
    script:
        "../scripts/split.py"
