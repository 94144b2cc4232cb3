"""Rule scores: agreement of one analysis with the transfer ground truth (attribution-paper P@K/R@K,
DDS Spearman, tree agreement), each with a bootstrap interval over probe images and a permutation
p-value over task labels; writes R/scores/{method}/{layer}.json."""
from tasksim import taxonomy as tx
from tasksim.io import write_json
from tasksim.similarity.registry import get_method
from tasksim.snakeutils import run_label, setup

log = setup(snakemake)
sm = snakemake
p = sm.params
t = p.taxonomy
inp = sm.input
sf = tx.read_similarity(inp.similarity, per_image=get_method(p.method).bootstrap == "per_image")
models = list(sf.matrix.index)
gts = {
    "attribution": tx.read_groundtruth_csv(inp.gt_attribution) if "gt_attribution" in inp.keys() else None,
    "dds_affinity": tx.read_groundtruth_csv(inp.gt_dds) if "gt_dds" in inp.keys() else None,
    "dds_wins_vs_pixels": tx.read_groundtruth_csv(inp.gt_wins) if "gt_wins" in inp.keys() else None,
}
reference = None
if "reference" in inp.keys():
    with open(inp.reference) as fh:
        reference = tx.linkage_from_json(fh.read())
protocols = tx.define_protocols(models, gts, t["groundtruth"], reference, t["n_clusters"])
for name, reason in protocols.skipped.items():
    log.warning("protocol %s skipped: %s", name, reason)
rdm_files = dict(zip(p.models, inp.rdms)) if "rdms" in inp.keys() else None
act_files = dict(zip(p.models, inp.activations)) if "activations" in inp.keys() else None
recompute = get_method(p.method).bootstrap in ("grams", "recompute")
n_boot = t["n_bootstrap_recompute"] if recompute else t["n_bootstrap"]
fn, kind, reason = (None, "none", "n_bootstrap = 0")
if n_boot > 0:
    fn, kind, reason = tx.bootstrap_source(p.method, models, sf, rdm_files, act_files, p.layer,
                                           p.options, t["recompute_max_mb"])
if fn is None:
    log.warning("no bootstrap interval: %s", reason)
tree = {"method": t["linkage"], "distance": t["distance"], "optimal_ordering": t["optimal_ordering"]}
res = tx.score_analysis(sf.matrix, protocols, tree, n_images=sf.n_images, similarity_fn=fn,
                        n_bootstrap=n_boot, n_permutations=t["n_permutations"], seed=t["seed"],
                        level=t["confidence"], n_clusters=t["n_clusters"], bootstrap_reason=reason,
                        log=log.info)
res["bootstrap"]["kind"] = kind
res.update(method=p.method, layer=p.layer, models=models, n_images=sf.n_images,
           probe_sha256=sf.attrs.get("probe_sha256"), groundtruth=t["groundtruth"],
           groundtruth_files={k: str(v) for k, v in inp.items() if k.startswith("gt_")},
           tree=tree, similarity_file=str(inp.similarity), run=run_label(sm))
write_json(sm.output.scores, res)
log.info("scores of %s/%s -> %s", p.method, p.layer, sm.output.scores)
