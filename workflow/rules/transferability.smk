# Label-based transferability: per source, every estimator against every target's labels; per
# estimator and layer, the source x target matrix and its scores against the transfer ground
# truth; then both method families (similarity matrices and estimator matrices) in one comparison
# with the noise ceiling and the popularity floor. Science: tasksim.transferability (the
# comparison: tasksim.transferability.comparison); adapters: workflow/scripts/transferability_*.py,
# workflow/scripts/method_comparison.py.
wildcard_constraints:
    estimator="|".join(TR["estimators"]) if TR["estimators"] else "[^/]+",


rule transferability_source:
    input:
        activations=f"{RESULTS}/activations/{{model}}.h5",
        targets=TARGETS_FILE,
        head=source_head,
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
        groundtruth=TR_GROUNDTRUTH,
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
        groundtruth_label=TR_GROUNDTRUTH_LABEL,
    script:
        "../scripts/transferability_scores.py"


rule method_comparison:
    input:
        unpack(comparison_bootstrap_inputs),
        similarity=[similarity_file(m, layer) for m, layer in analyses()],
        matrices=[
            f"{TR_DIR}/{e}/{layer}.h5"
            for e in TR["estimators"]
            for layer in TR["layers"]
        ],
        groundtruth=TR_GROUNDTRUTH,
        losses=MT_FILES["losses"] if MT["enabled"] else [],
    output:
        csv=report(
            f"{TR_DIR}/comparison.csv",
            caption="../report/method_comparison.rst",
            category="Transferability matrices",
            subcategory="label-free vs label-based",
            labels={"table": "both families, ceiling and floor"},
        ),
        png=report(
            f"{TR_DIR}/comparison.png",
            caption="../report/method_comparison.rst",
            category="Transferability matrices",
            subcategory="label-free vs label-based",
            labels={"figure": "mean per-target Spearman of both families"},
        ),
    log:
        f"{LOGS}/transferability/comparison.log",
    benchmark:
        f"{BENCH}/transferability/comparison.tsv"
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=TAX["mem_mb"],
        runtime=60,
    params:
        code=script_code("method_comparison"),
        sources=MODELS,
        seed=TR["seed"],
        confidence=TR["confidence"],
        n_bootstrap=TR["n_bootstrap"],
        options={m: method_options(config, m) for m in TAX_METHODS},
        max_mb=TAX["recompute_max_mb"],
        groundtruth_label=TR_GROUNDTRUTH_LABEL,
    script:
        "../scripts/method_comparison.py"


if transferability_active(config):
    TARGET_HOOKS.append(transferability_outputs)
