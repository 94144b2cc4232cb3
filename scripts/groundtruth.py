"""Rule groundtruth: fetch the nine Taskonomy result pickles, verify SHA-256, parse safely, write
source x target CSVs R/groundtruth/{kind}_{variant}.csv (canonical names)."""
from tasksim import groundtruth as gt
from tasksim.io import atomic_path
from tasksim.snakeutils import setup

log = setup(snakemake)
sm = snakemake
for kind in gt.KINDS:
    for variant in gt.VARIANTS:
        out = sm.output[f"{kind}_{variant}"]
        m = gt.load_matrix(sm.params.source, kind, variant, cache_dir=sm.params.cache)
        with atomic_path(out, suffix=".csv") as tmp:
            m.to_csv(tmp, float_format="%.17g")
        log.info("%s %s: %d sources x %d targets (SHA-256 %s verified) -> %s", kind, variant,
                 m.shape[0], m.shape[1], gt.SHA256[gt.relpath(kind, variant)][:12], out)
