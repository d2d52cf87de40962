rule merge:
    input:
        unpack(get_merge_input),
    output:
        csv="results/submission.csv",
    log:
        "logs/merge.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/carmask.yaml"
    script:
        "../scripts/merge.py"


rule compress_submission:
    input:
        "results/submission.csv",
    output:
        "results/submission.csv.gz",
    log:
        "logs/compress_submission.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../envs/carmask.yaml"
    script:
        "../scripts/compress_submission.py"
