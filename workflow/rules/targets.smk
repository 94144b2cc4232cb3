# Target labels of the probe images, one file per probe set, from the configured label source
# (targets.source): the rendered labels of Mini-Taskonomy's probe scenes, every task's label of
# each probe view of the Taskonomy sample building, or a user's own task. Science:
# tasksim.targets; adapter: workflow/scripts/targets.py.
TARGETS_FILE = f"{DATA}/targets/{config['probe']['name']}.h5"
TARGETS_SOURCE = config["targets"]["source"]


rule targets:
    input:
        probe=PROBE,
        url_list=PROBE_URL_LIST if TARGETS_SOURCE == "taskonomy" else [],
        class_csv=(
            (config["targets"]["user"]["class_csv"] or [])
            if TARGETS_SOURCE == "user"
            else []
        ),
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
        runtime=60,
    params:
        code=script_code("targets"),
        source=TARGETS_SOURCE,
        tasks=target_tasks(config),
        options={k: config["targets"][k] for k in ("size", "user")},
        cache=f"{DATA}/targets/labels",
        image_dir=config["probe"]["folder"]["path"],
    script:
        "../scripts/targets.py"
