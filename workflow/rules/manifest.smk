rule manifest:
    input:
        data=get_data_input,
    output:
        train="results/manifest/train.parquet",
        test="results/manifest/test.parquet",
    log:
        "logs/manifest.log",
    params:
        on_bad_name=config["manifest"]["on_bad_name"],
        partial_test=config["manifest"]["partial_test"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/carmask.yaml"
    script:
        "../scripts/manifest.py"
