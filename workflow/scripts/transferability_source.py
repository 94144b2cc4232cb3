"""Rule transferability_source: every estimator's estimate of one source for every target."""
from tasksim.snakeutils import hdf5_locking, setup
from tasksim.transferability.stage import source_estimates

log = setup(snakemake)
sm = snakemake
p = sm.params
source_estimates(sm.input.activations, sm.input.targets, sm.output.rows, sm.wildcards.model, p.layers,
                 p.estimators, p.options, grid=p.grid, levels=p.levels, pca_dim=p.pca_dim,
                 n_bootstrap=p.n_bootstrap, seed=p.seed, head=sm.input.head[0] if sm.input.head else None,
                 locking=hdf5_locking(sm))
