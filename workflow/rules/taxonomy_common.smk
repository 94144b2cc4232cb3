# Helper functions and constants of taxonomy.smk (kept apart: Snakemake style keeps rules and functions in separate files).
import os

from tasksim.config import method_options
from tasksim.taxonomy.groundtruth import KINDS as GT_KINDS, VARIANTS as GT_VARIANTS
from tasksim.similarity.registry import get_method

TAX = config["taxonomy"]
GT_KIND = TAX["groundtruth"]
GT_FILES = {
    f"{k}_{v}": f"{RESULTS}/groundtruth/{k}_{v}.csv"
    for k in GT_KINDS
    for v in GT_VARIANTS
}
FIG = f"{RESULTS}/figures"
TAX_METHODS = list(dict.fromkeys(m for m, _ in analyses()))
TREE_OPTS = {k: TAX[k] for k in ("linkage", "distance", "optimal_ordering")}


wildcard_constraints:
    method="|".join(TAX_METHODS) if TAX_METHODS else "[^/]+",
    reference="taskonomy|minitaskonomy",


def reference_tree_file(ext="json"):
    return f"{RESULTS}/trees/{GT_KIND}.{ext}"


def groundtruth_inputs():
    """Ground-truth CSVs of each protocol for the configured ground truth."""
    if GT_KIND == "taskonomy":
        return {
            "gt_attribution": GT_FILES["affinity_16k"],
            "gt_dds_affinity": GT_FILES["affinity_base"],
            "gt_dds_wins_vs_pixels": GT_FILES["wins_vs_pixels_16k"],
        }
    out = {
        "gt_attribution": TAX["groundtruth_csv"],
        "gt_dds_affinity": TAX["groundtruth_csv"],
    }
    if TAX["groundtruth_wins_csv"]:
        out["gt_dds_wins_vs_pixels"] = TAX["groundtruth_wins_csv"]
    return out


def scores_inputs(wildcards):
    """The matrix, the ground truth, and what the method's bootstrap resamples (its table entry
    says which: stored RDMs, the per-image values inside the matrix file, or activations).
    """
    inputs = {
        "similarity": similarity_file(wildcards.method, wildcards.layer),
        "reference": reference_tree_file(),
        **groundtruth_inputs(),
    }
    bootstrap = get_method(wildcards.method).bootstrap
    if bootstrap == "rdms" and TAX["n_bootstrap"] > 0:
        inputs["rdms"] = [f"{RESULTS}/rdms/{x}.h5" for x in MODELS]
    elif bootstrap in ("grams", "recompute") and TAX["n_bootstrap_recompute"] > 0:
        inputs["activations"] = [activation_file(x) for x in MODELS]
    return inputs


def analysis_figures(kind):
    return [
        f"{FIG}/{kind}/{m}/{layer}.{ext}"
        for m, layer in analyses()
        for ext in ("png", "pdf")
    ]


def svcca_vs_attribution():
    methods = config["similarity"]["methods"]
    attr = [m for m in methods if get_method(m).reads == "attribution_maps"]
    if "svcca" not in methods or not attr or not method_layers(config, "svcca"):
        return None
    return method_layers(config, "svcca")[0], attr


def taxonomy_targets():
    t = [
        f"{RESULTS}/trees/{m}/{layer}.{ext}"
        for m, layer in analyses()
        for ext in ("nwk", "json")
    ]
    t += [f"{RESULTS}/scores/{m}/{layer}.json" for m, layer in analyses()]
    t += (
        analysis_figures("trees")
        + analysis_figures("heatmaps")
        + analysis_figures("target_scatter")
    )
    t += [
        reference_tree_file("nwk"),
        reference_tree_file("json"),
        f"{FIG}/trees/{GT_KIND}.png",
        f"{FIG}/trees/{GT_KIND}.pdf",
    ]
    if GT_KIND == "taskonomy":
        t += list(GT_FILES.values())
    if analyses():
        t += [f"{RESULTS}/scores/summary.csv", f"{RESULTS}/scores/summary.md"]
        t += [
            f"{FIG}/{n}.{ext}"
            for n in ("precision_recall_at_k", "dds_correlations", "tree_agreement")
            for ext in ("png", "pdf")
        ]
    if svcca_vs_attribution():
        t += [f"{FIG}/svcca_vs_attribution.png", f"{FIG}/svcca_vs_attribution.pdf"]
    return t
