rule manifest_train:
    input:
        data=get_data_input,
    output:
        "results/manifest/train.parquet",
    log:
        "logs/manifest/train.log",
    benchmark:
        "logs/benchmarks/manifest/train.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=code("manifest"),
        side="train",
        data_dir=data_dir(),
        fingerprint=lambda wildcards: get_data_fingerprint("train"),
        on_bad_name=config["manifest"]["on_bad_name"],
    script:
        "../scripts/manifest.py"


rule manifest_test:
    input:
        data=get_data_input,
    output:
        "results/manifest/test.parquet",
    log:
        "logs/manifest/test.log",
    benchmark:
        "logs/benchmarks/manifest/test.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=code("manifest"),
        side="test",
        data_dir=data_dir(),
        fingerprint=lambda wildcards: get_data_fingerprint("test"),
        on_bad_name=config["manifest"]["on_bad_name"],
        partial_test=config["manifest"]["partial_test"],
    script:
        "../scripts/manifest.py"
