"""Rule feature_similarity: SVCCA / PWCCA / CKA matrix of one layer from all models' activations."""
from tasksim.similarity.stage import feature_similarity_file
from tasksim.snakeutils import hdf5_locking, setup

log = setup(snakemake)
sm = snakemake
feature_similarity_file(sm.wildcards.method, sm.input.activations, sm.params.models,
                        sm.wildcards.layer, sm.params.options, sm.output.h5, sm.output.csv,
                        hdf5_locking(sm))
