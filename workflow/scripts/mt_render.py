"""Rule mt_render: render one Mini-Taskonomy scene split (images + analytic labels) to HDF5."""
from tasksim.scenes import render_split
from tasksim.snakeutils import setup

log = setup(snakemake)
p = snakemake.params
path = render_split(snakemake.output.scenes, p.n, p.size, p.seed, start=p.start)
log.info("rendered %d scenes (%d px, seed %d, first index %d) to %s", p.n, p.size, p.seed, p.start, path)
