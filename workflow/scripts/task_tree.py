"""Rule task_tree: the task tree of one analysis (Newick, JSON, dendrogram) and its ordered heatmap."""
from tasksim.snakeutils import run_label, setup
from tasksim.taxonomy.stage import method_tree_files

log = setup(snakemake)
sm, p = snakemake, snakemake.params
method_tree_files(sm.input.similarity, p.method, p.layer, p.tree, run_label(sm), dict(sm.output.items()))
