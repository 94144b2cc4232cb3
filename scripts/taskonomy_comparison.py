"""Rule taskonomy_comparison: the measured Mini-Taskonomy affinity and every similarity matrix
against the original Taskonomy affinity, on the task names both have (CSV and Markdown)."""
from tasksim import taxonomy as tx
from tasksim.io import atomic_path
from tasksim.minitaskonomy.check import taskonomy_comparison
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
sims = {name: tx.read_similarity(path).matrix for name, path in zip(sm.params.analyses, sm.input.similarity,
                                                                     strict=True)}
table = taskonomy_comparison(tx.read_groundtruth_csv(sm.input.mini), tx.read_groundtruth_csv(sm.input.taskonomy),
                             sims)
with atomic_path(sm.output.csv, suffix=".csv") as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
first = table.iloc[0]
lines = [f"# Mini-Taskonomy vs the original Taskonomy affinity ({run_label(sm)})", "",
         f"Mean over {first.n_targets} shared targets of the per-target Spearman against Taskonomy's "
         f"unsuffixed affinity (sources: the {first.n_sources} shared tasks, own entry included).", "",
         "| matrix | mean Spearman vs Taskonomy |", "|---|---|"]
lines += [f"| {r.matrix} | {r.mean_spearman:.3f} |" for r in table.itertuples()]
with atomic_path(sm.output.md, suffix=".md") as tmp:
    tmp.write_text("\n".join(lines) + "\n")
log.info("measured mini affinity vs Taskonomy: %.3f over %d targets", first.mean_spearman, first.n_targets)
