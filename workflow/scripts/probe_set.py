"""Rule probe_set: choose the probe images and freeze them into the probe HDF5 file."""
from tasksim.probe import build_probe_set
from tasksim.snakeutils import partial_config, setup

log = setup(snakemake)
cfg = partial_config({"probe": snakemake.params.probe,
                      "preprocessing": snakemake.params.preprocessing})
digest = build_probe_set(cfg, snakemake.output.probe, cache_dir=snakemake.params.cache,
                         list_path=snakemake.output.url_list)
log.info("probe set %s: content sha256 %s", snakemake.output.probe, digest)
