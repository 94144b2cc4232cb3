"""Rule mt_affinity: gather per-source losses; AHP affinity and win rates vs pixels (CSV + pickle)."""
from tasksim.minitaskonomy.stage import affinity_files
from tasksim.snakeutils import setup

log = setup(snakemake)
sm, o = snakemake, snakemake.output
affinity_files(sm.input.losses, sm.params.sources, sm.params.targets, o.losses, o.affinity, o.affinity_pkl,
               o.wins_vs_pixels, o.wins_vs_pixels_pkl)
