rule demo_data:
    output:
        folder=directory("results/demo"),
    log:
        "logs/demo_data.log",
    params:
        demo=config["demo"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/carmask.yaml"
    script:
        "../scripts/demo_data.py"
