rule split:
    input:
        train="results/manifest/train.parquet",
    output:
        train="results/split/train.parquet",
        val="results/split/val.parquet",
    log:
        "logs/split.log",
    params:
        val_fraction=config["split"]["val_fraction"],
        seed=config["split"]["seed"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/carmask.yaml"
    script:
        "../scripts/split.py"
