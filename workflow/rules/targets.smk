# Target labels of the probe images, one file per probe set (Mini-Taskonomy: the rendered labels
# of the probe scenes). Science: tasksim.targets; adapter: workflow/scripts/targets.py.
TARGETS_FILE = f"{DATA}/targets/{config['probe']['name']}.h5"


rule targets:
    input:
        probe=PROBE,
    output:
        targets=TARGETS_FILE,
    log:
        f"{LOGS}/targets.log",
    benchmark:
        f"{BENCH}/targets.tsv"
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=script_code("targets"),
        tasks=list(config["minitaskonomy"]["tasks"]),
    script:
        "../scripts/targets.py"
