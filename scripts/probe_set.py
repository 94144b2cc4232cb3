"""Rule probe_set: choose the probe images and freeze them into the probe HDF5 file."""
from tasksim.probe import build_probe_set
from tasksim.snakeutils import partial_config, setup

log = setup(snakemake)  # noqa: F821
cfg = partial_config({"probe": snakemake.params.probe,  # noqa: F821
                      "preprocessing": snakemake.params.preprocessing})  # noqa: F821
digest = build_probe_set(cfg, snakemake.output.probe, cache_dir=snakemake.params.cache,  # noqa: F821
                         list_path=snakemake.output.url_list)  # noqa: F821
log.info("probe set %s: content sha256 %s", snakemake.output.probe, digest)  # noqa: F821
