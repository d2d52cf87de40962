rule tune_threshold:
    input:
        predictions=get_member_predictions,
        val="results/split/val.parquet",
    output:
        "results/thresholds/{entry}.json",
    log:
        "logs/tune_threshold/{entry}.log",
    benchmark:
        "logs/benchmarks/tune_threshold/{entry}.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=code("tune_threshold"),
        weights=get_weights,
    script:
        "../scripts/tune_threshold.py"


rule evaluate:
    input:
        unpack(get_threshold_input),
        shards=lambda wildcards: get_shards("rle", wildcards.entry, "val"),
        timings=lambda wildcards: [
            t for m in members(wildcards.entry) for t in get_val_timings(m)
        ],
        val="results/split/val.parquet",
        training=lambda wildcards: expand(
            "results/models/{member}/training.json", member=members(wildcards.entry)
        ),
    output:
        metrics="results/metrics/{entry}.json",
    log:
        "logs/evaluate/{entry}.log",
    benchmark:
        "logs/benchmarks/evaluate/{entry}.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        code=code("evaluate"),
        cfgs=get_member_blocks,
        weights=get_weights,
        threshold=config["inference"]["threshold"],
        timings=lambda wildcards: {
            m: get_val_timings(m) for m in members(wildcards.entry)
        },
    script:
        "../scripts/evaluate.py"


rule choose_model:
    input:
        metrics=expand("results/metrics/{entry}.json", entry=ENTRIES),
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
        models=ENTRIES,
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
