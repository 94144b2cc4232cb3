"""Rule transferability_scores: one estimator's matrix against the transfer ground truth."""
from tasksim.snakeutils import setup
from tasksim.taxonomy.files import read_groundtruth_csv
from tasksim.transferability.stage import transferability_scores

log = setup(snakemake)
sm = snakemake
transferability_scores(sm.input.matrix, read_groundtruth_csv(sm.input.groundtruth), sm.output.scores,
                       n_permutations=sm.params.n_permutations, seed=sm.params.seed,
                       groundtruth_label=sm.params.groundtruth_label,
                       confidence=sm.params.confidence)
