"""Rule figure_target_scatter: per target, each source's similarity under one analysis against its
ground-truth affinity."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import target_scatter_figure

log = setup(snakemake)
sm, p = snakemake, snakemake.params
target_scatter_figure(sm.input.similarity, sm.input.groundtruth, p.groundtruth, p.method, p.layer, p.gt_label,
                      run_label(sm), sm.output.png, sm.output.pdf)
