rule predict:
    input:
        model="results/models/{model}/model.keras",
        manifest=get_items_table,
    output:
        predictions="results/predictions/{model}/{subset}/shard-{shard}.parquet",
        timing="results/predictions/{model}/{subset}/shard-{shard}.timing.json",
    log:
        "logs/predict/{model}/{subset}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/predict/{model}/{subset}/shard-{shard}.tsv"
    # Models only: the ensemble has no network of its own.
    wildcard_constraints:
        model=one_of(MODELS),
    conda:
        "../../envs/carmask.yaml"
    # One thread a job: a 2-thread job keeps only ~1.2 cores busy (small
    # convolutions), so two 1-thread jobs on 2 cores predict more, and encode
    # jobs fill the gaps (docs/performance.md).
    threads: 1
    resources:
        mem_mb=3000,
        runtime=240,
    params:
        code=code("predict"),
        cfg=get_model_block,
        shards=lambda wildcards: SHARDS[wildcards.subset],
        batch_size=get_batch_size,
        tta=config["inference"]["tta"],
        precision=PRECISION,
    script:
        "../scripts/predict.py"
