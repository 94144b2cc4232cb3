# Probe images, frozen once into an HDF5 probe file.


rule probe_set:
    output:
        probe=PROBE,
        url_list=PROBE_URL_LIST,
    log:
        f"{LOGS}/probe_set.log",
    benchmark:
        f"{BENCH}/probe_set.tsv"
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        code=script_code("probe_set"),
        probe=config["probe"],
        preprocessing=config["preprocessing"],
        cache=f"{DATA}/probe/{config['probe']['name']}_files",
    script:
        "../scripts/probe_set.py"
