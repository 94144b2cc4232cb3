"""Rule groundtruth: the nine Taskonomy result pickles, verified by SHA-256, as source x target CSVs."""
from tasksim.snakeutils import setup
from tasksim.taxonomy.stage import groundtruth_files

log = setup(snakemake)
sm = snakemake
groundtruth_files(sm.params.source, sm.params.cache, dict(sm.output.items()))
