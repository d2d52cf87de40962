rule evaluate:
    input:
        shards=lambda wildcards: get_shards("rle", wildcards.model, "val"),
        timings=lambda wildcards: get_shards(
            "predictions", wildcards.model, "val", "timing.json"
        ),
        val="results/split/val.parquet",
        training="results/models/{model}/training.json",
    output:
        full="results/metrics/{model}.json",
        model="results/models/{model}/metrics.json",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "logs/benchmarks/evaluate/{model}.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        code=code("evaluate"),
        cfg=get_model_block,
        threshold=config["inference"]["threshold"],
    script:
        "../scripts/evaluate.py"


rule choose_model:
    input:
        metrics=expand("results/metrics/{model}.json", model=MODELS),
    output:
        choice="results/metrics/best_model.txt",
    log:
        "logs/choose_model.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        code=code("choose_model"),
        models=MODELS,
    script:
        "../scripts/choose_model.py"


rule score_submission:
    input:
        submission=lambda wildcards: config_path("score", "submission"),
        truth=lambda wildcards: config_path("score", "truth"),
    output:
        "results/score.json",
    log:
        "logs/score_submission.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        code=code("score_submission"),
        size=config["score"]["size"],
    script:
        "../scripts/score_submission.py"
