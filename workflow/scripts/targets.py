"""Rule targets: the labels of every target task for the probe images (D/targets/{probe}.h5)."""
from tasksim.snakeutils import hdf5_locking, setup
from tasksim.targets.stage import minitaskonomy_target_file

log = setup(snakemake)
sm = snakemake
minitaskonomy_target_file(sm.input.probe, sm.output.targets, sm.params.tasks, hdf5_locking(sm))
