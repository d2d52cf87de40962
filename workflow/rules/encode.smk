rule encode:
    input:
        predictions="results/predictions/{model}/{subset}/shard-{shard}.parquet",
        manifest=get_items,
    output:
        "results/rle/{model}/{subset}/shard-{shard}.parquet",
    log:
        "logs/encode/{model}/{subset}/shard-{shard}.log",
    params:
        threshold=config["inference"]["threshold"],
    threads: 1
    resources:
        mem_mb=1500,
        runtime=60,
    conda:
        "../../envs/carmask.yaml"
    script:
        "../scripts/encode.py"
