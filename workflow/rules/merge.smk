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
