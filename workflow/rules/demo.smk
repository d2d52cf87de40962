rule demo_data:
    output:
        folder=directory("results/demo"),
    log:
        "logs/demo_data.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=code("demo_data"),
        demo=config["demo"],
    script:
        "../scripts/demo_data.py"
