"""Rule figure_svcca_vs_attribution: SVCCA similarity against attribution similarity per task pair
(the attribution paper's comparison)."""
from tasksim import figures
from tasksim import taxonomy as tx
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
x = tx.read_similarity(sm.input.svcca)
ys = {m: tx.read_similarity(f).matrix for m, f in zip(sm.params.methods, sm.input.attribution)}
fig = figures.pair_scatter(
    x.matrix, ys, xlabel=f"SVCCA similarity ({sm.params.layer})",
    title="SVCCA vs attribution similarity per task pair",
    subtitle=f"{run_label(sm)} - {x.n_images} probe images")
figures.save(fig, sm.output.png, sm.output.pdf)
