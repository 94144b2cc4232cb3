"""Rule download_weights: fetch one model's weights (URL, file:// or mirror), SHA-256 verified."""
from tasksim.download import fetch
from tasksim.snakeutils import partial_config, setup
from tasksim.zoo import model_specs

log = setup(snakemake)
cfg = partial_config(snakemake.params.model)
(spec,) = model_specs(cfg).values()
log.info("model %s: %s (expected sha256 %s)", spec.name, spec.weights, spec.sha256)
fetch(spec.weights, snakemake.output.weights, spec.sha256, retries=4)
