"""Rule scores: agreement of one analysis with the transfer ground truth, with bootstrap intervals
and permutation p-values; writes R/scores/{method}/{layer}.json."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import scores_file

log = setup(snakemake)
sm, inp = snakemake, snakemake.input
gt = {k.removeprefix("gt_"): v for k, v in inp.items() if k.startswith("gt_")}
scores_file(inp.similarity, sm.params.method, sm.params.layer, gt, inp.get("reference"), sm.params.taxonomy,
            sm.params.options, sm.params.models, inp.get("rdms"), inp.get("activations"), run_label(sm),
            sm.output.scores)
