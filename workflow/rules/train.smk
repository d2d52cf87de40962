rule train:
    input:
        unpack(get_encoder_weights_input),
        train="results/split/train.parquet",
        val="results/split/val.parquet",
    output:
        model="results/models/{model}/model.keras",
        training="results/models/{model}/training.json",
        history="results/models/{model}/history.csv",
        curves=report(
            "results/models/{model}/curves.png",
            caption="../report/curves.rst",
            category="2. Training",
            labels={"model": "{model}"},
        ),
        summary="results/models/{model}/summary.txt",
    log:
        "logs/train/{model}.log",
    benchmark:
        "logs/benchmarks/train/{model}.tsv"
    # Models only: the ensemble has no network of its own.
    wildcard_constraints:
        model=one_of(MODELS),
    conda:
        "../../envs/carmask.yaml"
    threads: 2
    resources:
        mem_mb=12000,
        runtime=600,
    params:
        code=code("train"),
        cfg=get_model_block,
    script:
        "../scripts/train.py"
