"""Rule summary: one table of all methods x layers x protocols (CSV, Markdown) and the report's front page."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import summary_files

log = setup(snakemake)
sm = snakemake
summary_files(sm.input.scores, sm.params.probe, run_label(sm), sm.output.csv, sm.output.md, sm.output.front)
