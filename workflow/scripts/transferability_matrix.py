"""Rule transferability_matrix: one estimator's source x target matrix at one layer."""
from tasksim.snakeutils import hdf5_locking, setup
from tasksim.transferability.stage import estimator_matrix

log = setup(snakemake)
sm = snakemake
estimator_matrix(sm.input.rows, sm.input.targets, sm.output.h5, sm.output.csv, sm.wildcards.estimator,
                 sm.wildcards.layer, sm.params.sources, sm.params.options, hdf5_locking(sm))
