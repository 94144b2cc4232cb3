"""Rules task_tree and reference_tree: cluster a similarity matrix (or a ground truth's
transfer-out pattern) into a task tree; write Newick, node-link JSON, dendrogram (PNG+PDF) and,
for a method, the similarity heatmap ordered by the tree."""
from pathlib import Path

from tasksim import figures, trees
from tasksim import taxonomy as tx
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
o = sm.output
p = sm.params
if "similarity" in sm.input.keys():
    sf = tx.read_similarity(sm.input.similarity)
    tree = p.tree
    labels = list(sf.matrix.index)
    z = trees.cluster(sf.matrix.to_numpy(), tree["linkage"], tree["distance"], tree["optimal_ordering"])
    info = {"method": p.method, "layer": p.layer, "linkage_method": tree["linkage"],
            "distance": tree["distance"], "optimal_ordering": tree["optimal_ordering"],
            "n_images": sf.n_images, "source": str(sm.input.similarity)}
    what = f"{p.method} / {p.layer}"
    sub = f"{run_label(sm)} - {sf.n_images} probe images"
    title = f"Task tree: {what} ({tree['linkage']} linkage, {tree['distance']})"
else:
    aff = tx.read_groundtruth_csv(sm.input.affinity)
    z, labels, info = tx.reference_tree(aff, p.kind)
    info["source"] = str(sm.input.affinity)
    sub = f"{run_label(sm)}"
    title = (f"Reference tree: {p.kind} transfer-out affinities "
             f"({info['linkage_method']} linkage on per-target ranks)")
Path(o.newick).parent.mkdir(parents=True, exist_ok=True)
from tasksim.io import atomic_path  # noqa: E402

with atomic_path(o.newick, suffix=".nwk") as tmp:
    tmp.write_text(trees.to_newick(z, labels) + "\n")
with atomic_path(o.json, suffix=".json") as tmp:
    tmp.write_text(tx.tree_json(z, labels, **info))
fig = trees.dendrogram_figure(z, labels, title=f"{title}\n{sub}")
figures.save(fig, o.dendrogram_png, o.dendrogram_pdf)
if "heatmap_png" in o.keys():
    order = trees.leaves(trees.linkage_to_digraph(z, labels))
    fig = figures.similarity_heatmap(sf.matrix, order, title=f"Similarity: {what}", subtitle=sub,
                                     colorbar_label=f"{p.method} similarity")
    figures.save(fig, o.heatmap_png, o.heatmap_pdf)
log.info("tree of %d leaves -> %s", len(labels), o.newick)
