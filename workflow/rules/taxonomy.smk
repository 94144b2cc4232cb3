# Task trees, agreement with the transfer ground truth (Taskonomy or Mini-Taskonomy), figures and
# the report. Layout: docs/data-layout.md ("Taxonomy and comparison"). Options:
# config["taxonomy"]. Science: tasksim.taxonomy.trees / scoring / uncertainty / groundtruth; glue:
# tasksim.taxonomy; figures: tasksim.taxonomy.figures.
rule groundtruth:
    output:
        **{
            key: report(
                path,
                caption="../report/groundtruth.rst",
                category="Ground truth",
                subcategory="Taskonomy first-order transfers",
                labels={"file": key},
            )
            for key, path in GT_FILES.items()
        },
    log:
        f"{LOGS}/groundtruth.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        code=script_code("groundtruth"),
        source=TAX["groundtruth_source"],
        cache=f"{DATA}/taskonomy",
    script:
        "../scripts/groundtruth.py"


rule reference_tree:
    input:
        affinity=(
            GT_FILES["affinity_16k"]
            if GT_KIND == "taskonomy"
            else (TAX["groundtruth_csv"] or [])
        ),
    output:
        newick=f"{RESULTS}/trees/{{reference}}.nwk",
        json=f"{RESULTS}/trees/{{reference}}.json",
        dendrogram_png=report(
            f"{FIG}/trees/{{reference}}.png",
            caption="../report/reference_tree.rst",
            category="Task trees",
            subcategory="reference",
            labels={"tree": "{reference}"},
        ),
        dendrogram_pdf=f"{FIG}/trees/{{reference}}.pdf",
    log:
        f"{LOGS}/trees/{{reference}}.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("reference_tree"),
        kind=lambda wc: wc.reference,
    script:
        "../scripts/reference_tree.py"


rule task_tree:
    input:
        similarity=similarity_file("{method}", "{layer}"),
    output:
        newick=f"{RESULTS}/trees/{{method}}/{{layer}}.nwk",
        json=f"{RESULTS}/trees/{{method}}/{{layer}}.json",
        dendrogram_png=report(
            f"{FIG}/trees/{{method}}/{{layer}}.png",
            caption="../report/task_tree.rst",
            category="Task trees",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "{layer}"},
        ),
        dendrogram_pdf=f"{FIG}/trees/{{method}}/{{layer}}.pdf",
        heatmap_png=report(
            f"{FIG}/heatmaps/{{method}}/{{layer}}.png",
            caption="../report/heatmap.rst",
            category="Similarity heatmaps",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "{layer}"},
        ),
        heatmap_pdf=f"{FIG}/heatmaps/{{method}}/{{layer}}.pdf",
    log:
        f"{LOGS}/trees/{{method}}/{{layer}}.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("task_tree"),
        method=lambda wc: wc.method,
        layer=lambda wc: wc.layer,
        tree=TREE_OPTS,
    script:
        "../scripts/task_tree.py"


rule scores:
    input:
        unpack(scores_inputs),
    output:
        scores=f"{RESULTS}/scores/{{method}}/{{layer}}.json",
    log:
        f"{LOGS}/scores/{{method}}/{{layer}}.log",
    benchmark:
        f"{BENCH}/scores/{{method}}/{{layer}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    threads: TAX["threads"]
    resources:
        mem_mb=TAX["mem_mb"],
        runtime=120,
    params:
        code=script_code("scores"),
        method=lambda wc: wc.method,
        layer=lambda wc: wc.layer,
        models=MODELS,
        options=lambda wc: method_options(config, wc.method),
        taxonomy=result_options(TAX),
    script:
        "../scripts/scores.py"


rule figure_target_scatter:
    input:
        similarity=similarity_file("{method}", "{layer}"),
        groundtruth=(
            GT_FILES["affinity_16k"]
            if GT_KIND == "taskonomy"
            else (TAX["groundtruth_csv"] or [])
        ),
    output:
        png=report(
            f"{FIG}/target_scatter/{{method}}/{{layer}}.png",
            caption="../report/target_scatter.rst",
            category="Similarity vs transfer affinity",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "{layer}"},
        ),
        pdf=f"{FIG}/target_scatter/{{method}}/{{layer}}.pdf",
    log:
        f"{LOGS}/figures/target_scatter/{{method}}/{{layer}}.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("figure_target_scatter"),
        method=lambda wc: wc.method,
        layer=lambda wc: wc.layer,
        groundtruth=GT_KIND,
        gt_label=(
            "Taskonomy affinity (all_affinities_16k)"
            if GT_KIND == "taskonomy"
            else "Mini-Taskonomy affinity"
        ),
    script:
        "../scripts/figure_target_scatter.py"


rule summary:
    input:
        scores=[f"{RESULTS}/scores/{m}/{layer}.json" for m, layer in analyses()],
    output:
        csv=report(
            f"{RESULTS}/scores/summary.csv",
            caption="../report/summary.rst",
            category="Scores",
            subcategory="summary table",
            labels={"table": "all methods x layers x protocols"},
        ),
        md=f"{RESULTS}/scores/summary.md",
        front=REPORT_FRONT_PAGE,
    log:
        f"{LOGS}/scores/summary.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        code=script_code("summary"),
        probe={k: config["probe"][k] for k in ("name", "source")},
    script:
        "../scripts/summary.py"


rule figures_summary:
    input:
        scores=[f"{RESULTS}/scores/{m}/{layer}.json" for m, layer in analyses()],
        summary=f"{RESULTS}/scores/summary.csv",
    output:
        pk_png=report(
            f"{FIG}/precision_recall_at_k.png",
            caption="../report/precision_recall.rst",
            category="Scores",
            subcategory="attribution-paper protocol",
            labels={"figure": "P@K and R@K"},
        ),
        pk_pdf=f"{FIG}/precision_recall_at_k.pdf",
        dds_png=report(
            f"{FIG}/dds_correlations.png",
            caption="../report/dds.rst",
            category="Scores",
            subcategory="DDS protocol",
            labels={"figure": "DDS correlations"},
        ),
        dds_pdf=f"{FIG}/dds_correlations.pdf",
        tree_png=report(
            f"{FIG}/tree_agreement.png",
            caption="../report/tree_agreement.rst",
            category="Scores",
            subcategory="tree agreement",
            labels={"figure": "tree agreement"},
        ),
        tree_pdf=f"{FIG}/tree_agreement.pdf",
    log:
        f"{LOGS}/figures/summary.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("figures_summary"),
    script:
        "../scripts/figures_summary.py"


if svcca_vs_attribution():

    rule figure_svcca_vs_attribution:
        input:
            svcca=similarity_file("svcca", svcca_vs_attribution()[0]),
            attribution=[similarity_file(m, "input") for m in svcca_vs_attribution()[1]],
        output:
            png=report(
                f"{FIG}/svcca_vs_attribution.png",
                caption="../report/svcca_vs_attribution.rst",
                category="Similarity vs transfer affinity",
                subcategory="SVCCA vs attribution",
                labels={"figure": "SVCCA vs attribution"},
            ),
            pdf=f"{FIG}/svcca_vs_attribution.pdf",
        log:
            f"{LOGS}/figures/svcca_vs_attribution.log",
        conda:
            "../envs/tasksim.yaml"
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            code=script_code("figure_svcca_vs_attribution"),
            layer=svcca_vs_attribution()[0],
            methods=svcca_vs_attribution()[1],
        script:
            "../scripts/figure_svcca_vs_attribution.py"


TARGET_HOOKS.append(taxonomy_targets)


if config["minitaskonomy"]["enabled"] and config["minitaskonomy"]["compare_taskonomy"]:

    rule taskonomy_comparison:
        input:
            mini=TAX["groundtruth_csv"],
            taskonomy=GT_FILES["affinity_base"],
            similarity=[similarity_file(m, layer) for m, layer in analyses()],
        output:
            csv=report(
                f"{RESULTS}/scores/taskonomy_comparison.csv",
                caption="../report/taskonomy_comparison.rst",
                category="Scores",
                subcategory="Mini-Taskonomy vs original Taskonomy",
                labels={"table": "agreement with Taskonomy on shared tasks"},
            ),
            md=f"{RESULTS}/scores/taskonomy_comparison.md",
        log:
            f"{LOGS}/scores/taskonomy_comparison.log",
        conda:
            "../envs/tasksim.yaml"
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            code=script_code("taskonomy_comparison"),
            analyses=[f"{m}/{layer}" for m, layer in analyses()],
        script:
            "../scripts/taskonomy_comparison.py"

    TARGET_HOOKS.append(lambda: [f"{RESULTS}/scores/taskonomy_comparison.csv"])
