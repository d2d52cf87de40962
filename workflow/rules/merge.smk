rule merge:
    input:
        unpack(get_merge_input),
    output:
        csv="results/submission.csv",
    log:
        "logs/merge.log",
    benchmark:
        "logs/benchmarks/merge.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=code("merge"),
        model=config["submission_model"],
        shards=lambda wildcards: {
            m: get_shards("rle", m, "test") for m in submission_candidates()
        },
        metrics=lambda wildcards: {
            m: f"results/metrics/{m}.json" for m in submission_candidates()
        },
        timings=lambda wildcards: {
            m: [
                t
                for member in members(m)
                for t in get_shards("predictions", member, "test", "timing.json")
            ]
            for m in submission_candidates()
        },
    script:
        "../scripts/merge.py"


rule compress_submission:
    input:
        csv="results/submission.csv",
    output:
        "results/submission.csv.gz",
    log:
        "logs/compress_submission.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        code=code("compress_submission"),
    script:
        "../scripts/compress_submission.py"
