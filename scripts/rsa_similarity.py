"""Rule rsa_similarity: RSA matrix of one layer from all models' RDMs."""
from tasksim.snakeutils import hdf5_locking, setup
from tasksim.stages import rsa_similarity_file

log = setup(snakemake)
sm = snakemake
rsa_similarity_file(sm.input.rdms, sm.params.models, sm.wildcards.layer, sm.params.compare,
                    sm.output.h5, sm.output.csv, sm.params.options, hdf5_locking(sm))
