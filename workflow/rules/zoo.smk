# Model zoo: stand-in weights (offline runs) and one verified download per model.


rule standin_zoo:
    conda:
        "../envs/tasksim.yaml"
    output:
        manifest=STANDIN_MANIFEST,
    params:
        code=script_code("standin_zoo"),
        tasks=config["tasks"],
        standin=config["standin"],
    log:
        f"{LOGS}/standin_zoo.log",
    benchmark:
        f"{BENCH}/standin_zoo.tsv"
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../../scripts/standin_zoo.py"


rule download_weights:
    conda:
        "../envs/tasksim.yaml"
    input:
        manifest=STANDIN_MANIFEST if config["standin"]["enabled"] else [],
    output:
        weights=f"{DATA}/weights/{{model}}.pth",
    params:
        model=model_config,
    log:
        f"{LOGS}/download_weights/{{model}}.log",
    resources:
        mem_mb=500,
        runtime=30,
    script:
        "../../scripts/download_weights.py"
