# Similarity engines: RDMs and RSA, SVCCA / PWCCA / CKA, attribution maps. One matrix per
# (method, layer); methods, layers and options come from config["similarity"].
rule rdms:
    input:
        activations=f"{RESULTS}/activations/{{model}}.h5",
    output:
        rdms=f"{RESULTS}/rdms/{{model}}.h5",
    log:
        f"{LOGS}/rdms/{{model}}.log",
    benchmark:
        f"{BENCH}/rdms/{{model}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=script_code("rdms"),
        layers=SIM["rsa"]["layers"],
        normalization=SIM["rsa"]["normalization"],
        distance=SIM["rsa"]["distance"],
        block_size=SIM["rsa"]["block_size"],
    script:
        "../scripts/rdms.py"


rule rsa_similarity:
    input:
        rdms=expand(f"{RESULTS}/rdms/{{model}}.h5", model=MODELS),
    output:
        h5=f"{RESULTS}/similarity/{{method}}/{{layer}}.h5",
        csv=report(
            f"{RESULTS}/similarity/{{method}}/{{layer}}.csv",
            caption="../report/similarity.rst",
            category="Similarity matrices",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "{layer}"},
        ),
    log:
        f"{LOGS}/similarity/{{method}}/{{layer}}.log",
    wildcard_constraints:
        method=method_constraint("rdms"),
    conda:
        "../envs/tasksim.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=script_code("rsa_similarity"),
        models=MODELS,
        options=lambda wc: method_options(config, wc.method),
    script:
        "../scripts/rsa_similarity.py"


rule feature_similarity:
    input:
        activations=expand(f"{RESULTS}/activations/{{model}}.h5", model=MODELS),
    output:
        h5=f"{RESULTS}/similarity/{{method}}/{{layer}}.h5",
        csv=report(
            f"{RESULTS}/similarity/{{method}}/{{layer}}.csv",
            caption="../report/similarity.rst",
            category="Similarity matrices",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "{layer}"},
        ),
    log:
        f"{LOGS}/similarity/{{method}}/{{layer}}.log",
    benchmark:
        f"{BENCH}/similarity/{{method}}/{{layer}}.tsv"
    wildcard_constraints:
        method=method_constraint("activations"),
    conda:
        "../envs/tasksim.yaml"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        code=script_code("feature_similarity"),
        models=MODELS,
        options=lambda wc: method_options(config, wc.method),
    script:
        "../scripts/feature_similarity.py"


rule attribution_maps:
    input:
        weights=f"{DATA}/weights/{{model}}.pth",
        probe=PROBE,
    output:
        maps=f"{RESULTS}/attributions/{{model}}.h5",
    log:
        f"{LOGS}/attribution_maps/{{model}}.log",
    benchmark:
        f"{BENCH}/attribution_maps/{{model}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    threads: SIM["attribution"]["threads"]
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=gpu_resources(),
    params:
        code=script_code("attribution_maps"),
        model=model_config,
        kinds=ATTR_KINDS,
        attribution=result_options(SIM["attribution"]),
        device=config["device"],
    script:
        "../scripts/attribution_maps.py"


rule attribution_similarity:
    input:
        maps=expand(f"{RESULTS}/attributions/{{model}}.h5", model=MODELS),
    output:
        h5=f"{RESULTS}/similarity/{{method}}/input.h5",
        csv=report(
            f"{RESULTS}/similarity/{{method}}/input.csv",
            caption="../report/similarity.rst",
            category="Similarity matrices",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "input"},
        ),
    log:
        f"{LOGS}/similarity/{{method}}/input.log",
    wildcard_constraints:
        method=method_constraint("attribution_maps"),
    conda:
        "../envs/tasksim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=script_code("attribution_similarity"),
        models=MODELS,
        kind=lambda wc: map_kind(wc.method),
        options=lambda wc: method_options(config, wc.method),
    script:
        "../scripts/attribution_similarity.py"


TARGET_HOOKS.append(lambda: [similarity_file(m, layer) for m, layer in analyses()])
