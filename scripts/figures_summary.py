"""Rule figures_summary: P@K / R@K curves of all analyses with random and oracle (the attribution
paper's figure), and bar charts of the DDS correlations and of the tree agreement with intervals."""
import json

import pandas as pd

from tasksim import figures
from tasksim import taxonomy as tx
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
o = sm.output
run = run_label(sm)
results = []
for path in sm.input.scores:
    with open(path) as fh:
        results.append(json.load(fh))
n_images = sorted({r["n_images"] for r in results})
sub = f"{run} - {', '.join(map(str, n_images))} probe images"
curves, oracle, meta = {}, None, None
for r in results:
    a = r["protocols"].get("attribution", {})
    if "precision" in a:
        curves[f"{r['method']} / {r['layer']}"] = a
        oracle, meta = a["oracle_precision"], a
if curves:
    fig = figures.precision_recall_curves(
        curves, oracle, meta["n_relevant"], len(meta["sources"]) - 1,
        title=(f"Retrieval of the top-{meta['n_relevant']} sources of {tx.article(meta['groundtruth'])} "
               f"({len(meta['targets'])} targets)"),
        subtitle=sub)
else:
    fig = figures.new_figure((7, 3))
    ax = fig.add_subplot()
    ax.axis("off")
    reasons = {r["protocols"].get("attribution", {}).get("skipped", "") for r in results}
    ax.text(0.5, 0.5, "P@K / R@K not computed:\n" + "\n".join(sorted(reasons)), ha="center",
            va="center", wrap=True, fontsize=8)
    fig.suptitle("Retrieval of the top sources of the ground truth: not available")
figures.save(fig, o.pk_png, o.pk_pdf)
table = pd.read_csv(sm.input.summary)
gt_name = tx.groundtruth_label(results[0]["groundtruth"], "dds_affinity") if results else "the ground truth"
for scores, png, pdf, title, ylabel in (
        (["dds_affinity", "dds_wins_vs_pixels"], o.dds_png, o.dds_pdf,
         f"DDS protocol: mean per-target Spearman with {tx.article(gt_name)}", "mean per-target Spearman"),
        (["tree_cophenetic", "tree_adjusted_rand"], o.tree_png, o.tree_pdf,
         f"Tree agreement with the tree of {tx.article(gt_name)}", "agreement")):
    titles = {k: tx.describe_score(table, k) for k in scores}
    fig = figures.score_bars(table, scores, titles, title=title, ylabel=ylabel, subtitle=sub)
    figures.save(fig, png, pdf)
log.info("summary figures written")
