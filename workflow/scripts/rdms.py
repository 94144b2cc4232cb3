"""Rule rdms: the RDM of every RSA layer of one model."""
from tasksim.similarity.stage import rdm_file
from tasksim.snakeutils import hdf5_locking, setup

log = setup(snakemake)
sm = snakemake
rdm_file(sm.input.activations, sm.output.rdms, sm.params.layers, sm.params.normalization,
         sm.params.distance, sm.params.block_size, hdf5_locking(sm))
