"""Rule rsa_similarity: the matrix of an RDM-reading method (RSA) of one layer from all models' RDMs."""
from tasksim.similarity.stage import rsa_similarity_file
from tasksim.snakeutils import hdf5_locking, setup

log = setup(snakemake)
sm = snakemake
rsa_similarity_file(sm.input.rdms, sm.params.models, sm.wildcards.layer, sm.output.h5, sm.output.csv,
                    sm.params.options, hdf5_locking(sm), sm.wildcards.method)
