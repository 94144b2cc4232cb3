"""Rule mt_affinity: gather per-source losses; AHP affinity and win rates vs pixels (CSV + pickle)."""
import numpy as np

from tasksim.io import atomic_path
from tasksim.minitaskonomy.ahp import affinity_frame, wins_vs_frame, write_affinity
from tasksim.snakeutils import setup

log = setup(snakemake)
sm = snakemake
sources, targets = list(sm.params.sources), list(sm.params.targets)
per_source = [np.load(p) for p in sm.input.losses]
losses = {t: np.stack([ps[t] for ps in per_source]) for t in targets}
with atomic_path(sm.output.losses, suffix=".npz") as tmp:
    with open(tmp, "wb") as fh:
        np.savez(fh, sources=np.array(sources), **losses)
aff = affinity_frame(losses, sources)
write_affinity(aff, sm.output.affinity, sm.output.affinity_pkl)
write_affinity(wins_vs_frame(losses, sources, "pixels"), sm.output.wins_vs_pixels,
               sm.output.wins_vs_pixels_pkl)
best = {t: aff[t].drop([t, "pixels", "random"], errors="ignore").idxmax() for t in targets}
log.info("affinity %s x %s written; best other source per target: %s", len(sources), len(targets), best)
