"""Rule mt_head_probe: class probabilities of one task's categorical head on the probe images."""
from tasksim.minitaskonomy.stage import head_probe_file
from tasksim.snakeutils import hdf5_locking, setup

log = setup(snakemake)
sm = snakemake
head_probe_file(sm.params.task, sm.input.weights, sm.input.head, sm.input.probe, sm.output.probabilities,
                low_saturation=sm.params.low_saturation, locking=hdf5_locking(sm))
