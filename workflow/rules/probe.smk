# Probe images, frozen once into an HDF5 probe file.


rule probe_set:
    conda:
        "../envs/tasksim.yaml"
    output:
        probe=PROBE,
        url_list=PROBE_URL_LIST,
    params:
        code=script_code("probe_set"),
        probe=config["probe"],
        preprocessing=config["preprocessing"],
        cache=f"{DATA}/probe/{config['probe']['name']}_files",
    log:
        f"{LOGS}/probe_set.log",
    benchmark:
        f"{BENCH}/probe_set.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../../scripts/probe_set.py"
