"""Rule targets: the labels of every target task for the probe images (D/targets/{probe}.h5)."""
from tasksim.snakeutils import hdf5_locking, setup
from tasksim.targets.stage import target_file

log = setup(snakemake)
sm, p = snakemake, snakemake.params
target_file(p.source, sm.input.probe, sm.output.targets, p.tasks, p.options,
            url_list=sm.input.url_list or None, cache_dir=p.cache, image_dir=p.image_dir,
            locking=hdf5_locking(sm))
