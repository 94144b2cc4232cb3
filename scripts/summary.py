"""Rule summary: one table of all methods x layers x protocols (CSV and Markdown)."""
import json

from tasksim import taxonomy as tx
from tasksim.io import atomic_path
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
results = []
for path in sm.input.scores:
    with open(path) as fh:
        results.append(json.load(fh))
table = tx.summary_table(results)
with atomic_path(sm.output.csv, suffix=".csv") as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
md = tx.summary_markdown(table, f"Agreement with the transfer ground truth ({run_label(sm)})")
with atomic_path(sm.output.md, suffix=".md") as tmp:
    tmp.write_text(md)
with atomic_path(sm.output.front, suffix=".rst") as tmp:
    tmp.write_text(tx.headline_rst(table, results, run_label(sm), sm.params.probe))
log.info("%d rows -> %s", len(table), sm.output.csv)
