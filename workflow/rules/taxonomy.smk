# Task trees, agreement with the transfer ground truth (Taskonomy or Mini-Taskonomy), figures and
# the report (issue 4). Layout: docs/data-layout.md ("Taxonomy and comparison"). Options:
# config["taxonomy"]. Science: tasksim.trees / scoring / uncertainty / groundtruth; glue:
# tasksim.taxonomy; figures: tasksim.figures.
import os

from tasksim.groundtruth import KINDS as GT_KINDS, VARIANTS as GT_VARIANTS

TAX = config["taxonomy"]
GT_KIND = TAX["groundtruth"]
GT_FILES = {f"{k}_{v}": f"{RESULTS}/groundtruth/{k}_{v}.csv" for k in GT_KINDS for v in GT_VARIANTS}
FIG = f"{RESULTS}/figures"
RUN_LABEL = (f"config {os.path.basename(workflow.configfiles[-1]) if workflow.configfiles else 'default'}"
             f", probe set '{config['probe']['name']}'")
TAX_METHODS = list(dict.fromkeys(m for m, _ in analyses()))
TREE_OPTS = {k: TAX[k] for k in ("linkage", "distance", "optimal_ordering")}

if GT_KIND == "minitaskonomy" and not TAX["groundtruth_csv"]:
    raise ValueError("config taxonomy.groundtruth = minitaskonomy needs taxonomy.groundtruth_csv "
                     "(a source x target affinity CSV)")


wildcard_constraints:
    method="|".join(TAX_METHODS) if TAX_METHODS else "[^/]+",
    reference="taskonomy|minitaskonomy",


def reference_tree_file(ext="json"):
    return f"{RESULTS}/trees/{GT_KIND}.{ext}"


def groundtruth_inputs():
    """Ground-truth CSVs of each protocol for the configured ground truth."""
    if GT_KIND == "taskonomy":
        return {"gt_attribution": GT_FILES["affinity_16k"], "gt_dds": GT_FILES["affinity_base"],
                "gt_wins": GT_FILES["wins_vs_pixels_16k"]}
    out = {"gt_attribution": TAX["groundtruth_csv"], "gt_dds": TAX["groundtruth_csv"]}
    if TAX["groundtruth_wins_csv"]:
        out["gt_wins"] = TAX["groundtruth_wins_csv"]
    return out


def taxonomy_options(method):
    """The similarity options the bootstrap must reproduce (same mapping as similarity.smk)."""
    sim = config["similarity"]
    if method == "rsa":
        return {"comparison": sim["rsa"]["comparison"]}
    if method in ("svcca", "pwcca"):
        c = sim["cca"]
        return {"keep": c["k"] if c["k"] else c["variance"], "conv_mode": c["mode"]}
    if method in ("cka_linear", "cka_rbf"):
        c = sim["cka"]
        return {"debiased": c["debiased"], "threshold": c["rbf_threshold"]}
    return {}


def scores_inputs(wildcards):
    inputs = {"similarity": similarity_file(wildcards.method, wildcards.layer),
              "reference": reference_tree_file(), **groundtruth_inputs()}
    m = wildcards.method
    if m == "rsa" and TAX["n_bootstrap"] > 0:
        inputs["rdms"] = [f"{RESULTS}/rdms/{x}.h5" for x in MODELS]
    elif m in ("svcca", "pwcca", "cka_linear", "cka_rbf") and TAX["n_bootstrap_recompute"] > 0:
        inputs["activations"] = [activation_file(x) for x in MODELS]
    return inputs


def analysis_figures(kind):
    return [f"{FIG}/{kind}/{m}/{layer}.{ext}" for m, layer in analyses() for ext in ("png", "pdf")]


def svcca_vs_attribution():
    methods = config["similarity"]["methods"]
    attr = [m for m in methods if m.startswith("attribution_")]
    if "svcca" not in methods or not attr or not config["similarity"]["cca"]["layers"]:
        return None
    return config["similarity"]["cca"]["layers"][0], attr


def taxonomy_targets():
    t = [f"{RESULTS}/trees/{m}/{layer}.{ext}" for m, layer in analyses() for ext in ("nwk", "json")]
    t += [f"{RESULTS}/scores/{m}/{layer}.json" for m, layer in analyses()]
    t += analysis_figures("trees") + analysis_figures("heatmaps") + analysis_figures("target_scatter")
    t += [reference_tree_file("nwk"), reference_tree_file("json"),
          f"{FIG}/trees/{GT_KIND}.png", f"{FIG}/trees/{GT_KIND}.pdf"]
    if GT_KIND == "taskonomy":
        t += list(GT_FILES.values())
    if analyses():
        t += [f"{RESULTS}/scores/summary.csv", f"{RESULTS}/scores/summary.md"]
        t += [f"{FIG}/{n}.{ext}" for n in ("precision_recall_at_k", "dds_correlations",
                                             "tree_agreement") for ext in ("png", "pdf")]
    if svcca_vs_attribution():
        t += [f"{FIG}/svcca_vs_attribution.png", f"{FIG}/svcca_vs_attribution.pdf"]
    return t


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
    params:
        source=TAX["groundtruth_source"],
        cache=f"{DATA}/taskonomy",
    log:
        f"{LOGS}/groundtruth.log",
    resources:
        mem_mb=1000,
        runtime=20,
    script:
        "../../scripts/groundtruth.py"


rule reference_tree:
    input:
        affinity=GT_FILES["affinity_16k"] if GT_KIND == "taskonomy" else (TAX["groundtruth_csv"] or []),
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
    params:
        kind=lambda wc: wc.reference,
        run=RUN_LABEL,
    log:
        f"{LOGS}/trees/{{reference}}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/task_tree.py"


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
    params:
        method=lambda wc: wc.method,
        layer=lambda wc: wc.layer,
        tree=TREE_OPTS,
        run=RUN_LABEL,
    log:
        f"{LOGS}/trees/{{method}}/{{layer}}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/task_tree.py"


rule scores:
    input:
        unpack(scores_inputs),
    output:
        scores=f"{RESULTS}/scores/{{method}}/{{layer}}.json",
    params:
        method=lambda wc: wc.method,
        layer=lambda wc: wc.layer,
        models=MODELS,
        options=lambda wc: taxonomy_options(wc.method),
        taxonomy=TAX,
        run=RUN_LABEL,
        locking=config["hdf5_file_locking"],
    log:
        f"{LOGS}/scores/{{method}}/{{layer}}.log",
    benchmark:
        f"{BENCH}/scores/{{method}}/{{layer}}.tsv"
    threads: TAX["threads"]
    resources:
        mem_mb=TAX["mem_mb"],
        runtime=120,
    script:
        "../../scripts/scores.py"


rule figure_target_scatter:
    input:
        similarity=similarity_file("{method}", "{layer}"),
        groundtruth=(GT_FILES["affinity_16k"] if GT_KIND == "taskonomy" else (TAX["groundtruth_csv"] or [])),
    output:
        png=report(
            f"{FIG}/target_scatter/{{method}}/{{layer}}.png",
            caption="../report/target_scatter.rst",
            category="Similarity vs transfer affinity",
            subcategory="{method}",
            labels={"method": "{method}", "layer": "{layer}"},
        ),
        pdf=f"{FIG}/target_scatter/{{method}}/{{layer}}.pdf",
    params:
        method=lambda wc: wc.method,
        layer=lambda wc: wc.layer,
        groundtruth=GT_KIND,
        gt_label=("Taskonomy affinity (all_affinities_16k)" if GT_KIND == "taskonomy"
                  else "Mini-Taskonomy affinity"),
        run=RUN_LABEL,
    log:
        f"{LOGS}/figures/target_scatter/{{method}}/{{layer}}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/figures_targets.py"


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
    params:
        run=RUN_LABEL,
    log:
        f"{LOGS}/scores/summary.log",
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../../scripts/summary.py"


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
    params:
        run=RUN_LABEL,
    log:
        f"{LOGS}/figures/summary.log",
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/figures_summary.py"


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
        params:
            layer=svcca_vs_attribution()[0],
            methods=svcca_vs_attribution()[1],
            run=RUN_LABEL,
        log:
            f"{LOGS}/figures/svcca_vs_attribution.log",
        resources:
            mem_mb=1000,
            runtime=10,
        script:
            "../../scripts/figures_pairs.py"


TARGET_HOOKS.append(taxonomy_targets)
