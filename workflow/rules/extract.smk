# Activation extraction: one job per model, one HDF5 file per model.


rule extract_activations:
    input:
        weights=f"{DATA}/weights/{{model}}.pth",
        probe=PROBE,
    output:
        activations=f"{RESULTS}/activations/{{model}}.h5",
    log:
        f"{LOGS}/extract_activations/{{model}}.log",
    benchmark:
        f"{BENCH}/extract_activations/{{model}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    threads: config["extraction"]["threads"]
    resources:
        mem_mb=config["extraction"]["mem_mb"],
        runtime=120,
        gpu=gpu_resources(),
    params:
        code=script_code("extract_activations"),
        model=model_config,
        extraction=result_options(config["extraction"]),
        device=config["device"],
    script:
        "../scripts/extract_activations.py"
