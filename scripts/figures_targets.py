"""Rule figure_target_scatter: per target, each source's similarity under one analysis against its
Taskonomy (or Mini-Taskonomy) first-order affinity."""
from tasksim import figures, scoring
from tasksim import taxonomy as tx
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
p = sm.params
sf = tx.read_similarity(sm.input.similarity)
gt = tx.read_groundtruth_csv(sm.input.groundtruth)
models = list(sf.matrix.index)
if p.groundtruth == "taskonomy":
    targets = [t for t in scoring.ATTRIBUTION_TARGETS if t in models]
    sources = [s for s in scoring.ATTRIBUTION_SOURCES if s in models]
else:
    sources = [m for m in models if m in gt.index]
    targets = [m for m in sources if m in gt.columns]
fig = figures.target_scatter(
    sf.matrix, gt, targets, sources,
    title=f"{p.method} / {p.layer} similarity vs {p.gt_label} per target",
    gt_label=p.gt_label, subtitle=f"{run_label(sm)} - {sf.n_images} probe images")
figures.save(fig, sm.output.png, sm.output.pdf)
