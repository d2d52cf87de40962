rule manifest:
    input:
        data=get_data_input,
    output:
        train="results/manifest/train.parquet",
        test="results/manifest/test.parquet",
    log:
        "logs/manifest.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        on_bad_name=config["manifest"]["on_bad_name"],
        partial_test=config["manifest"]["partial_test"],
    script:
        "../scripts/manifest.py"
