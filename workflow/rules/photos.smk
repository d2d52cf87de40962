# Any folder of car photos through a trained model (the `photos` target).


rule model_card:
    input:
        unpack(get_model_threshold_input),
        model="results/models/{model}/model.keras",
        val="results/split/val.parquet",
        predictions=lambda wildcards: get_shards("predictions", wildcards.model, "val"),
        rle=lambda wildcards: get_shards("rle", wildcards.model, "val"),
    output:
        card="results/models/{model}/card.json",
    log:
        "logs/model_card/{model}.log",
    wildcard_constraints:
        model=one_of(MODELS),
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code("model_card"),
        cfg=get_model_block,
        batch_size=get_batch_size,
        tta=config["inference"]["tta"],
        precision=PRECISION,
        threshold=config["inference"]["threshold"],
        refine=config["inference"]["refine"],
    script:
        "../scripts/model_card.py"


rule list_photos:
    output:
        "results/photos/listing.parquet",
    log:
        "logs/photos/list.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code("list_photos"),
        dir=config["photos"]["dir"],
        out=photos_out(),
        # The folder is no input (Snakemake would see only its own mtime): a
        # digest of every file's path, size and time relists it when it changes.
        fingerprint=photos_fingerprint(),
    script:
        "../scripts/list_photos.py"


rule cut_out_photos:
    input:
        listing="results/photos/listing.parquet",
        model=f"results/models/{PHOTOS_MODEL}/model.keras",
        card=f"results/models/{PHOTOS_MODEL}/card.json",
        refiner=(
            [f"results/models/{PHOTOS_MODEL}/refiner.keras"] if LEARNED_REFINE else []
        ),
    output:
        "results/photos/rows/shard-{shard}.parquet",
    log:
        "logs/photos/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/photos/shard-{shard}.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        code=code("cut_out_photos"),
        dir=config["photos"]["dir"],
        out=photos_out(),
        options=photo_options(),
        shards=config["photos"]["shards"],
    script:
        "../scripts/cut_out_photos.py"


rule summarise_photos:
    input:
        rows=expand(
            "results/photos/rows/shard-{shard}.parquet",
            shard=range(config["photos"]["shards"]),
        ),
    output:
        photos_summary(),
    log:
        "logs/photos/summary.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code("summarise_photos"),
    script:
        "../scripts/summarise_photos.py"
