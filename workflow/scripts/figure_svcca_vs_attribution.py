"""Rule figure_svcca_vs_attribution: SVCCA similarity against attribution similarity per task pair."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import svcca_vs_attribution_figure

log = setup(snakemake)
sm = snakemake
svcca_vs_attribution_figure(sm.input.svcca, sm.input.attribution, sm.params.methods, sm.params.layer,
                            run_label(sm), sm.output.png, sm.output.pdf)
