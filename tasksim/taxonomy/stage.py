"""Path-in/path-out steps of the taxonomy stage (and of its figures): ground truth, trees, scores,
the summary and the report's figures. Each reads its inputs through the owning stage's readers,
calls the library, and writes atomically; the rule scripts in ``workflow/scripts/`` only unpack
Snakemake's objects and call these (docs/data-layout.md lists every file).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tasksim.io import atomic_path, write_json
from tasksim.similarity.files import read_similarity
from tasksim.similarity.registry import get_method
from tasksim.taxonomy import figures, scoring, trees
from tasksim.taxonomy import groundtruth as gt
from tasksim.taxonomy.bootstrap import bootstrap_source
from tasksim.taxonomy.files import linkage_from_json, read_groundtruth_csv, tree_json
from tasksim.taxonomy.protocols import article, define_protocols, groundtruth_label, reference_tree
from tasksim.taxonomy.scorer import score_analysis
from tasksim.taxonomy.summary import describe_score, headline_rst, summary_markdown, summary_table

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def groundtruth_files(source: str, cache_dir: str, outputs: Mapping[str, PathLike]) -> None:
    """The nine Taskonomy result pickles, fetched from ``source``, verified by SHA-256, parsed
    safely, as source x target CSVs ``outputs["{kind}_{variant}"]`` (canonical task names)."""
    for kind in gt.KINDS:
        for variant in gt.VARIANTS:
            out = outputs[f"{kind}_{variant}"]
            m = gt.load_matrix(source, kind, variant, cache_dir=cache_dir)
            with atomic_path(out, suffix=".csv") as tmp:
                m.to_csv(tmp, float_format="%.17g")
            log.info("%s %s: %d sources x %d targets (SHA-256 %s verified) -> %s", kind, variant,
                     m.shape[0], m.shape[1], gt.SHA256[gt.relpath(kind, variant)][:12], out)


def _write_tree(z: Any, labels: Sequence[str], info: Mapping[str, Any], title: str,
                outputs: Mapping[str, PathLike]) -> None:
    with atomic_path(outputs["newick"], suffix=".nwk") as tmp:
        tmp.write_text(trees.to_newick(z, labels) + "\n")
    with atomic_path(outputs["json"], suffix=".json") as tmp:
        tmp.write_text(tree_json(z, labels, **info))
    figures.save(trees.dendrogram_figure(z, labels, title=title),
                 outputs["dendrogram_png"], outputs["dendrogram_pdf"])


def method_tree_files(similarity: PathLike, method: str, layer: str, tree: Mapping[str, Any],
                      run: str, outputs: Mapping[str, PathLike]) -> None:
    """The task tree of one analysis (Newick, node-link JSON, dendrogram) and its similarity
    heatmap ordered by the tree. ``tree``: ``linkage``, ``distance``, ``optimal_ordering``."""
    sf = read_similarity(similarity)
    labels = list(sf.matrix.index)
    z = trees.cluster(sf.matrix.to_numpy(), tree["linkage"], tree["distance"], tree["optimal_ordering"])
    info = {"method": method, "layer": layer, "linkage_method": tree["linkage"],
            "distance": tree["distance"], "optimal_ordering": tree["optimal_ordering"],
            "n_images": sf.n_images, "source": str(similarity)}
    sub = f"{run} - {sf.n_images} probe images"
    title = f"Task tree: {method} / {layer} ({tree['linkage']} linkage, {tree['distance']})"
    _write_tree(z, labels, info, f"{title}\n{sub}", outputs)
    order = trees.leaves(trees.linkage_to_digraph(z, labels))
    fig = figures.similarity_heatmap(sf.matrix, order, title=f"Similarity: {method} / {layer}",
                                     subtitle=sub, colorbar_label=f"{method} similarity")
    figures.save(fig, outputs["heatmap_png"], outputs["heatmap_pdf"])
    log.info("tree of %d leaves -> %s", len(labels), outputs["newick"])


def reference_tree_files(affinity: PathLike, kind: str, run: str, outputs: Mapping[str, PathLike]) -> None:
    """The reference tree of a ground truth (its transfer-out affinities clustered)."""
    z, labels, info = reference_tree(read_groundtruth_csv(affinity), kind)
    info["source"] = str(affinity)
    title = (f"Reference tree: {kind} transfer-out affinities "
             f"({info['linkage_method']} linkage on per-target ranks)")
    _write_tree(z, labels, info, f"{title}\n{run}", outputs)
    log.info("reference tree of %d leaves -> %s", len(labels), outputs["newick"])


def scores_file(similarity: PathLike, method: str, layer: str, groundtruth: Mapping[str, PathLike],
                reference: PathLike | None, taxonomy: Mapping[str, Any], options: Mapping[str, Any],
                models: Sequence[str], rdm_files: Sequence[PathLike] | None,
                activation_files: Sequence[PathLike] | None, run: str, out: PathLike) -> None:
    """Agreement of one analysis with the transfer ground truth (attribution-paper P@K/R@K, DDS
    per-target Spearman, tree agreement), each with a bootstrap interval over probe images (the
    method's own resampling, from the method table) and a permutation p-value over task labels.

    ``groundtruth``: ``{"attribution" | "dds_affinity" | "dds_wins_vs_pixels": CSV}`` (absent
    keys: protocol not available); ``taxonomy``: the resolved ``taxonomy`` section."""
    t = taxonomy
    spec = get_method(method)
    sf = read_similarity(similarity, per_image=spec.bootstrap == "per_image")
    names = list(sf.matrix.index)
    gts = {k: (read_groundtruth_csv(groundtruth[k]) if k in groundtruth else None)
           for k in ("attribution", "dds_affinity", "dds_wins_vs_pixels")}
    ref = None
    if reference is not None:
        with open(reference) as fh:
            ref = linkage_from_json(fh.read())
    protocols = define_protocols(names, gts, t["groundtruth"], ref, t["n_clusters"])
    for name, reason in protocols.skipped.items():
        log.warning("protocol %s skipped: %s", name, reason)
    rdms = dict(zip(models, rdm_files, strict=True)) if rdm_files else None
    acts = dict(zip(models, activation_files, strict=True)) if activation_files else None
    n_boot = t["n_bootstrap_recompute"] if spec.bootstrap in ("grams", "recompute") else t["n_bootstrap"]
    fn, kind, reason = None, "none", "n_bootstrap = 0"
    if n_boot > 0:
        fn, kind, reason = bootstrap_source(method, names, sf, rdms, acts, layer, options,
                                            t["recompute_max_mb"])
    if fn is None:
        log.warning("no bootstrap interval: %s", reason)
    tree = {"method": t["linkage"], "distance": t["distance"], "optimal_ordering": t["optimal_ordering"]}
    res = score_analysis(sf.matrix, protocols, tree, n_images=sf.n_images, similarity_fn=fn,
                         n_bootstrap=n_boot, n_permutations=t["n_permutations"], seed=t["seed"],
                         level=t["confidence"], n_clusters=t["n_clusters"], bootstrap_reason=reason,
                         log=log.info)
    res["bootstrap"]["kind"] = kind
    res.update(method=method, family=spec.family, layer=layer, models=names, n_images=sf.n_images,
               probe_sha256=sf.attrs.get("probe_sha256"), groundtruth=t["groundtruth"],
               groundtruth_files={k: str(v) for k, v in groundtruth.items()},
               tree=tree, similarity_file=str(similarity), run=run)
    write_json(out, res)
    log.info("scores of %s/%s -> %s", method, layer, out)


def read_scores(paths: Sequence[PathLike]) -> list[dict[str, Any]]:
    """The score JSONs of :func:`scores_file`."""
    out = []
    for path in paths:
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def summary_files(scores: Sequence[PathLike], probe: Mapping[str, Any], run: str, csv: PathLike,
                  md: PathLike, front: PathLike) -> pd.DataFrame:
    """One table of all analyses x headline scores (CSV and Markdown) and the report's front page."""
    results = read_scores(scores)
    table = summary_table(results)
    with atomic_path(csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(md, suffix=".md") as tmp:
        tmp.write_text(summary_markdown(table, f"Agreement with the transfer ground truth ({run})"))
    with atomic_path(front, suffix=".rst") as tmp:
        tmp.write_text(headline_rst(table, results, run, probe))
    log.info("%d rows -> %s", len(table), csv)
    return table


def target_scatter_figure(similarity: PathLike, groundtruth: PathLike, kind: str, method: str,
                          layer: str, gt_label: str, run: str, png: PathLike, pdf: PathLike) -> None:
    """Per target, each source's similarity under one analysis against its ground-truth affinity."""
    sf = read_similarity(similarity)
    aff = read_groundtruth_csv(groundtruth)
    models = list(sf.matrix.index)
    if kind == "taskonomy":
        targets = [t for t in scoring.ATTRIBUTION_TARGETS if t in models]
        sources = [s for s in scoring.ATTRIBUTION_SOURCES if s in models]
    else:
        sources = [m for m in models if m in aff.index]
        targets = [m for m in sources if m in aff.columns]
    fig = figures.target_scatter(
        sf.matrix, aff, targets, sources, title=f"{method} / {layer} similarity vs {gt_label} per target",
        gt_label=gt_label, subtitle=f"{run} - {sf.n_images} probe images")
    figures.save(fig, png, pdf)


def svcca_vs_attribution_figure(svcca: PathLike, attribution: Sequence[PathLike], methods: Sequence[str],
                                layer: str, run: str, png: PathLike, pdf: PathLike) -> None:
    """SVCCA similarity against attribution similarity per task pair (the attribution paper's comparison)."""
    x = read_similarity(svcca)
    ys = {m: read_similarity(f).matrix for m, f in zip(methods, attribution, strict=True)}
    fig = figures.pair_scatter(x.matrix, ys, xlabel=f"SVCCA similarity ({layer})",
                               title="SVCCA vs attribution similarity per task pair",
                               subtitle=f"{run} - {x.n_images} probe images")
    figures.save(fig, png, pdf)


def summary_figures(scores: Sequence[PathLike], summary: PathLike, run: str,
                    outputs: Mapping[str, PathLike]) -> None:
    """P@K / R@K curves of all analyses with random and oracle (the attribution paper's figure),
    and bar charts of the DDS correlations and of the tree agreement with their intervals."""
    o = outputs
    results = read_scores(scores)
    n_images = sorted({r["n_images"] for r in results})
    sub = f"{run} - {', '.join(map(str, n_images))} probe images"
    curves, oracle, meta = {}, None, None
    for r in results:
        a = r["protocols"].get("attribution", {})
        if "precision" in a:
            curves[f"{r['method']} / {r['layer']}"] = a
            oracle, meta = a["oracle_precision"], a
    if curves and meta is not None:
        fig = figures.precision_recall_curves(
            curves, oracle, meta["n_relevant"], len(meta["sources"]) - 1,
            title=(f"Retrieval of the top-{meta['n_relevant']} sources of {article(meta['groundtruth'])} "
                   f"({len(meta['targets'])} targets)"), subtitle=sub)
    else:
        reasons = {r["protocols"].get("attribution", {}).get("skipped", "") for r in results}
        fig = figures.message_figure("Retrieval of the top sources of the ground truth: not available",
                                     "P@K / R@K not computed:\n" + "\n".join(sorted(reasons)))
    figures.save(fig, o["pk_png"], o["pk_pdf"])
    table = pd.read_csv(summary)
    gt_name = groundtruth_label(results[0]["groundtruth"], "dds_affinity") if results else "the ground truth"
    bars: list[tuple[list[str], str, str, str, str]] = [
        (["dds_affinity", "dds_wins_vs_pixels"], "dds_png", "dds_pdf",
         f"DDS protocol: mean per-target Spearman with {article(gt_name)}", "mean per-target Spearman"),
        (["tree_cophenetic", "tree_adjusted_rand"], "tree_png", "tree_pdf",
         f"Tree agreement with the tree of {article(gt_name)}", "agreement"),
    ]
    for keys, png, pdf, title, ylabel in bars:
        titles = {k: describe_score(table, k) for k in keys}
        figures.save(figures.score_bars(table, keys, titles, title=title, ylabel=ylabel, subtitle=sub),
                     o[png], o[pdf])
    log.info("summary figures written")


def taskonomy_comparison_files(mini: PathLike, taskonomy: PathLike, analyses: Sequence[str],
                               similarity: Sequence[PathLike], run: str, csv: PathLike,
                               md: PathLike) -> pd.DataFrame:
    """The measured Mini-Taskonomy affinity and every similarity matrix against the original
    Taskonomy affinity, on the task names both have (CSV and Markdown)."""
    from tasksim.minitaskonomy.check import taskonomy_comparison

    sims = {name: read_similarity(path).matrix for name, path in zip(analyses, similarity, strict=True)}
    table = taskonomy_comparison(read_groundtruth_csv(mini), read_groundtruth_csv(taskonomy), sims)
    with atomic_path(csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    first = table.iloc[0]
    lines = [f"# Mini-Taskonomy vs the original Taskonomy affinity ({run})", "",
             f"Mean over {first.n_targets} shared targets of the per-target Spearman against Taskonomy's "
             f"unsuffixed affinity (sources: the {first.n_sources} shared tasks, own entry included).", "",
             "| matrix | mean Spearman vs Taskonomy |", "|---|---|"]
    lines += [f"| {r.matrix} | {r.mean_spearman:.3f} |" for r in table.itertuples()]
    with atomic_path(md, suffix=".md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    log.info("measured mini affinity vs Taskonomy: %.3f over %d targets", first.mean_spearman, first.n_targets)
    return table
