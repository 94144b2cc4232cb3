"""The summary of a run: one row per analysis and headline score, its Markdown and the report
front page, each naming its ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tasksim.taxonomy import uncertainty as _unc
from tasksim.taxonomy.protocols import HEADLINE_SCORES, article, groundtruth_label


def score_description(key: str, protocols: Mapping[str, Any]) -> str:
    """What a headline score measures, against which ground truth, on how many tasks.

    ``protocols``: the ``protocols`` entry of a scores JSON (:func:`score_analysis`). Falls back to
    :data:`SCORE_LABELS` where the protocol was skipped.
    """
    protocol, generic = SCORE_LABELS[key]
    if protocol == "attribution":
        a = protocols.get("attribution", {})
        if "sources" not in a:
            return generic
        if key == "mean_p@k":
            return f"mean of P@K over K = 1..{len(a['sources']) - 1} (vs {article(a['groundtruth'])})"
        return (f"{key.split('@')[0].upper()}@{key.split('@')[1]} vs the top-{a['n_relevant']} sources of "
                f"{article(a['groundtruth'])} ({len(a['targets'])} targets)")
    if protocol == "dds":
        d = protocols.get(key, {})
        if "tasks" not in d:
            return generic
        return f"mean per-target Spearman vs {article(d['groundtruth'])} ({len(d['tasks'])} tasks)"
    tree = protocols.get("tree", {})
    ref = tree.get("reference", "the reference tree")
    if key == "tree_cophenetic":
        return f"cophenetic correlation with {ref}"
    return f"adjusted Rand index of the {tree.get('n_clusters', 'k')}-cluster cuts vs {ref}"


#: Generic description of each headline score (protocol, what is measured); the tables and
#: figures use :func:`score_description`, which names the ground truth of the run.
SCORE_LABELS: dict[str, tuple[str, str]] = {
    "p@1": ("attribution", "P@1 vs the top sources of the ground truth"),
    "p@5": ("attribution", "P@5 vs the top sources of the ground truth"),
    "r@5": ("attribution", "R@5 vs the top sources of the ground truth"),
    "mean_p@k": ("attribution", "mean of P@K over K"),
    "dds_affinity": ("dds", "mean per-target Spearman vs the affinity"),
    "dds_wins_vs_pixels": ("dds", "mean per-target Spearman vs the win rate against pixels"),
    "tree_cophenetic": ("tree", "cophenetic correlation with the reference tree"),
    "tree_adjusted_rand": ("tree", "adjusted Rand index of the k-cluster cuts"),
}




def summary_table(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per analysis x headline score (:data:`HEADLINE_SCORES`), skipped protocols included."""
    rows = []
    for r in results:
        protos = r.get("protocols", {})
        for key in HEADLINE_SCORES:
            protocol, _ = SCORE_LABELS[key]
            s = r.get("scores", {}).get(key)
            pname = {"attribution": "attribution", "dds": key, "tree": "tree"}[protocol]
            note = protos.get(pname, {}).get("skipped", "")
            if s is None and not note:
                continue
            if s is not None and s.get("low") is None:
                note = r.get("bootstrap", {}).get("reason", "") or "no interval"
            rows.append({
                "method": r["method"], "layer": r["layer"], "protocol": protocol, "score": key,
                "description": score_description(key, protos), "estimate": None if s is None else s["estimate"],
                "ci_low": None if s is None else s["low"], "ci_high": None if s is None else s["high"],
                "p_value": None if s is None else s["p_value"],
                "chance": None if s is None else s.get("chance"), "n_images": r.get("n_images"),
                "n_bootstrap": r.get("bootstrap", {}).get("n", 0),
                "n_permutations": r.get("permutation", {}).get("n", 0), "note": note,
            })
    cols = ["method", "layer", "protocol", "score", "description", "estimate", "ci_low", "ci_high",
            "p_value", "chance", "n_images", "n_bootstrap", "n_permutations", "note"]
    return pd.DataFrame(rows, columns=cols)


#: Headline scores of the front page, in order of preference (the first one with a value is used).
FRONT_PAGE_SCORES: tuple[str, ...] = ("dds_affinity", "mean_p@k", "tree_cophenetic")


def headline_rst(table: pd.DataFrame, results: Sequence[Mapping[str, Any]], run: str,
                 probe: Mapping[str, Any], n_best: int = 3) -> str:
    """The report's front page (reStructuredText): what was run and what came out.

    Names the run, the models, the probe set and the ground truth; the ``n_best`` analyses by the
    first available score of :data:`FRONT_PAGE_SCORES` with their intervals and p-values and the
    chance level (the score with permuted task labels); and where the main figures are.
    """
    def num(x: Any) -> str:
        return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{float(x):.3f}"

    models = list(results[0]["models"]) if results else []
    kind = results[0].get("groundtruth", "taskonomy") if results else "taskonomy"
    n_images = sorted({int(r["n_images"]) for r in results if r.get("n_images")})
    lines = ["tasksim: task taxonomies from model similarity", "=" * 47, "",
             f"**Run**: {run}. **Models** ({len(models)}): {', '.join(models) or 'none'}. "
             f"**Probe set** ``{probe.get('name')}``: {', '.join(map(str, n_images)) or '?'} images "
             f"(source ``{probe.get('source')}``).", "",
             f"**Ground truth**: the {groundtruth_label(kind, 'dds_affinity')}"
             + (" (Mini-Taskonomy: transfer measured with readouts from every frozen encoder)"
                if kind == "minitaskonomy" else " (Zamir et al., CVPR 2018)") + ".", ""]
    key = next((k for k in FRONT_PAGE_SCORES
                if not table[(table["score"] == k) & table["estimate"].notna()].empty), None)
    if key is None:
        lines += ["**Result**: no score could be computed for this run; the summary table "
                  "(Scores / summary table) gives each protocol's reason.", ""]
    else:
        rows = table[(table["score"] == key) & table["estimate"].notna()].sort_values(
            "estimate", ascending=False)
        chance = {(r["method"], r["layer"]): r.get("scores", {}).get(key, {}).get("chance")
                  for r in results}
        lines += [f"**Result** ({describe_score(table, key)}; interval: "
                  f"{int(round(100 * results[0]['scores'][key].get('level', 0.95)))} % bootstrap over "
                  f"probe images; chance: the same matrix with its task labels permuted):", ""]
        for rank, (_, r) in enumerate(rows.head(n_best).iterrows(), 1):
            ci = (f" [{num(r.ci_low)}, {num(r.ci_high)}]" if pd.notna(r.ci_low) and pd.notna(r.ci_high)
                  else " (no interval)")
            pv = (f", {_unc.format_p_value(float(r.p_value), int(r.n_permutations or 0))}"
                  if pd.notna(r.p_value) else "")
            lines.append(f"{rank}. **{r.method} / {r.layer}**: {num(r.estimate)}{ci}{pv}; "
                         f"chance {num(chance.get((r.method, r.layer)))}")
        worst = rows.iloc[-1]
        lines += ["", f"Weakest of the {len(rows)} analyses: {worst.method} / {worst.layer}, "
                      f"{num(worst.estimate)}.", ""]
    lines += ["**Figures**: *Scores* holds the summary table and the bar charts of each protocol "
              "(DDS protocol: ``figures/dds_correlations.png``; attribution-paper protocol: P@K / R@K "
              "curves; tree agreement); *Task trees* the tree of every method and layer and the "
              "reference tree; *Similarity heatmaps* each matrix ordered by its tree; *Similarity "
              "matrices* the matrices as tables; *Similarity vs transfer affinity* "
              "one scatter panel per target. Every caption names what it shows and against which "
              "ground truth.", ""]
    return "\n".join(lines) + "\n"


def describe_score(table: pd.DataFrame, key: str) -> str:
    """The description of score ``key`` in a summary table (its ground truth named), or the generic one."""
    rows = table.loc[table["score"] == key, "description"] if "description" in table else []
    return str(rows.iloc[0]) if len(rows) else SCORE_LABELS[key][1]


def _p_text(row: Any) -> str:
    """The p-value of a summary-table row at its test's resolution ('' where there is none)."""
    if row.p_value is None or pd.isna(row.p_value):
        return ""
    return _unc.format_p_value(float(row.p_value), int(row.n_permutations or 0))


def summary_markdown(table: pd.DataFrame, title: str = "Agreement with the transfer ground truth") -> str:
    """Markdown rendering of :func:`summary_table` (one row per analysis x score)."""

    def fmt(x: Any, digits: int = 3) -> str:
        if x is None or (isinstance(x, float) and not np.isfinite(x)):
            return ""
        return f"{x:.{digits}f}" if isinstance(x, float) else str(x)

    lines = [f"# {title}", "",
             "estimate on all probe images; 95 % CI = bootstrap percentile interval over images; "
             "p = permutation p-value over task labels.", "",
             "| method | layer | score | estimate | CI | p | images | note |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        ci = (f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]" if r.ci_low is not None and pd.notna(r.ci_low)
              else "")
        lines.append(f"| {r.method} | {r.layer} | {r.score} | {fmt(r.estimate)} | {ci} | "
                     f"{_p_text(r)} | "
                     f"{fmt(r.n_images)} | {str(r.note).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


