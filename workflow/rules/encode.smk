rule encode:
    input:
        unpack(get_threshold_input),
        unpack(get_refiner_input),
        predictions=get_member_predictions,
        manifest=get_items_table,
    output:
        "results/rle/{entry}/{subset}/shard-{shard}.parquet",
    log:
        "logs/encode/{entry}/{subset}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/encode/{entry}/{subset}/shard-{shard}.tsv"
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=3000 if LEARNED_REFINE else 1500,
        runtime=60,
    params:
        code=code(ENCODE_SCRIPT),
        weights=get_weights,
        threshold=config["inference"]["threshold"],
        refine=config["inference"]["refine"],
    script:
        f"../scripts/{ENCODE_SCRIPT}.py"
