"""Rule attribution_similarity: mean per-image cosine of all models' attribution maps."""
from tasksim.similarity.stage import attribution_similarity_file
from tasksim.snakeutils import hdf5_locking, setup

log = setup(snakemake)
sm = snakemake
attribution_similarity_file(sm.input.maps, sm.params.models, sm.params.kind, sm.wildcards.method,
                            sm.output.h5, sm.output.csv, sm.params.options, hdf5_locking(sm))
