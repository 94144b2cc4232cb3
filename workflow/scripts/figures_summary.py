"""Rule figures_summary: P@K / R@K curves, DDS correlations and tree agreement of all analyses."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import summary_figures

log = setup(snakemake)
sm = snakemake
summary_figures(sm.input.scores, sm.input.summary, run_label(sm), dict(sm.output.items()))
