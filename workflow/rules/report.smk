rule compare_models:
    input:
        metrics=expand("results/metrics/{entry}.json", entry=ENTRIES),
    output:
        report(
            "results/report/models.csv",
            caption="../report/models.rst",
            category="1. Models",
        ),
    log:
        "logs/report/compare_models.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        code=code("compare_models"),
        models=ENTRIES,
    script:
        "../scripts/compare_models.py"


rule report_model:
    input:
        shards=lambda wildcards: get_shards("rle", wildcards.entry, "val"),
        val="results/split/val.parquet",
        metrics="results/metrics/{entry}.json",
    output:
        per_view=report(
            "results/report/{entry}/dice_per_view.png",
            caption="../report/per_view.rst",
            category="3. Validation",
            labels={"model": "{entry}", "figure": "Dice per view"},
        ),
        best=report(
            "results/report/{entry}/gallery_best.png",
            caption="../report/gallery.rst",
            category="3. Validation",
            labels={"model": "{entry}", "figure": "best images"},
        ),
        worst=report(
            "results/report/{entry}/gallery_worst.png",
            caption="../report/gallery.rst",
            category="3. Validation",
            labels={"model": "{entry}", "figure": "worst images"},
        ),
    log:
        "logs/report/{entry}.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code("report_model"),
        gallery_size=config["report"]["gallery_size"],
    script:
        "../scripts/report_model.py"


rule cutouts:
    input:
        unpack(get_background_input),
        shards=lambda wildcards: get_shards("rle", wildcards.entry, "test"),
        manifest="results/manifest/test.parquet",
    output:
        cutouts=directory("results/cutouts/{entry}"),
        composites=report(
            directory("results/composites/{entry}"),
            patterns=["{name}.jpg"],
            caption="../report/composites.rst",
            category="4. Cutouts",
            labels={"model": "{entry}", "image": "{name}"},
        ),
    log:
        "logs/cutouts/{entry}.log",
    conda:
        "../../envs/carmask.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        code=code("cutouts"),
        n_images=config["cutouts"]["n_images"],
        background=config["cutouts"]["background"],
    script:
        "../scripts/cutouts.py"
