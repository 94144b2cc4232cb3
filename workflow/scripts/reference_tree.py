"""Rule reference_tree: the reference tree of the ground truth (Newick, JSON, dendrogram)."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import reference_tree_files

log = setup(snakemake)
sm = snakemake
reference_tree_files(sm.input.affinity, sm.params.kind, run_label(sm), dict(sm.output.items()))
