# Model zoo: stand-in weights (offline runs) and one verified download per model.


rule standin_zoo:
    output:
        manifest=STANDIN_MANIFEST,
    log:
        f"{LOGS}/standin_zoo.log",
    benchmark:
        f"{BENCH}/standin_zoo.tsv"
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        code=script_code("standin_zoo"),
        tasks=config["tasks"],
        standin=config["standin"],
    script:
        "../scripts/standin_zoo.py"


rule download_weights:
    input:
        manifest=STANDIN_MANIFEST if config["standin"]["enabled"] else [],
    output:
        weights=f"{DATA}/weights/{{model}}.pth",
    log:
        f"{LOGS}/download_weights/{{model}}.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        model=model_config,
    script:
        "../scripts/download_weights.py"
