"""Rule taskonomy_comparison: the measured Mini-Taskonomy affinity and every similarity matrix
against the original Taskonomy affinity (CSV and Markdown)."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import taskonomy_comparison_files

log = setup(snakemake)
sm = snakemake
taskonomy_comparison_files(sm.input.mini, sm.input.taskonomy, sm.params.analyses, sm.input.similarity,
                           run_label(sm), sm.output.csv, sm.output.md)
