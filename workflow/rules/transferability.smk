# Label-based transferability: per source, every estimator against every target's labels; per
# estimator and layer, the source x target matrix and its scores against the transfer ground
# truth. Science: tasksim.transferability; adapters: workflow/scripts/transferability_*.py.
wildcard_constraints:
    estimator="|".join(TR["estimators"]) if TR["estimators"] else "[^/]+",


rule transferability_source:
    input:
        activations=f"{RESULTS}/activations/{{model}}.h5",
        targets=TARGETS_FILE,
    output:
        rows=f"{TR_DIR}/sources/{{model}}.csv",
    log:
        f"{LOGS}/transferability/sources/{{model}}.log",
    benchmark:
        f"{BENCH}/transferability/sources/{{model}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=script_code("transferability_source"),
        estimators=TR["estimators"],
        layers=TR["layers"],
        options=TR["options"],
        grid=TR["grid"],
        levels=TR["levels"],
        pca_dim=TR["pca_dim"],
        n_bootstrap=TR["n_bootstrap"],
        seed=TR["seed"],
    script:
        "../scripts/transferability_source.py"


rule transferability_matrix:
    input:
        rows=expand(f"{TR_DIR}/sources/{{model}}.csv", model=MODELS),
        targets=TARGETS_FILE,
    output:
        h5=f"{TR_DIR}/{{estimator}}/{{layer}}.h5",
        csv=report(
            f"{TR_DIR}/{{estimator}}/{{layer}}.csv",
            caption="../report/transferability.rst",
            category="Transferability matrices",
            subcategory="{estimator}",
            labels={"estimator": "{estimator}", "layer": "{layer}"},
        ),
    log:
        f"{LOGS}/transferability/{{estimator}}/{{layer}}.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("transferability_matrix"),
        sources=MODELS,
        options=lambda wc: {
            "estimator": dict(TR["options"].get(wc.estimator, {})),
            "grid": TR["grid"],
            "levels": TR["levels"],
            "pca_dim": TR["pca_dim"],
        },
    script:
        "../scripts/transferability_matrix.py"


rule transferability_scores:
    input:
        matrix=f"{TR_DIR}/{{estimator}}/{{layer}}.h5",
        groundtruth=config["taxonomy"]["groundtruth_csv"] or [],
    output:
        scores=f"{TR_DIR}/scores/{{estimator}}/{{layer}}.json",
    log:
        f"{LOGS}/transferability/scores/{{estimator}}/{{layer}}.log",
    benchmark:
        f"{BENCH}/transferability/scores/{{estimator}}/{{layer}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        code=script_code("transferability_scores"),
        n_permutations=TR["n_permutations"],
        seed=TR["seed"],
        confidence=TR["confidence"],
        groundtruth_label="measured Mini-Taskonomy affinity",
    script:
        "../scripts/transferability_scores.py"


if transferability_active(config):
    TARGET_HOOKS.append(transferability_outputs)
