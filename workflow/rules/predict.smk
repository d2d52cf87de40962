rule predict:
    input:
        model="results/models/{model}/model.keras",
        manifest=get_items_table,
    output:
        "results/predictions/{model}/{subset}/shard-{shard}.parquet",
    log:
        "logs/predict/{model}/{subset}/shard-{shard}.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=240,
    params:
        code=code("predict"),
        cfg=get_model_block,
        shards=lambda wildcards: SHARDS[wildcards.subset],
        batch_size=config["inference"]["batch_size"],
        tta_flip=config["inference"]["tta_flip"],
    script:
        "../scripts/predict.py"
