"""Rule extract_activations: record the configured layers of one model on the probe set."""
from tasksim.extract import extract_activations, resolve_device
from tasksim.io import sha256_file
from tasksim.snakeutils import hdf5_locking, partial_config, setup
from tasksim.zoo import load_model, model_specs

log = setup(snakemake)
sm = snakemake
cfg = partial_config(sm.params.model)
(spec,) = model_specs(cfg).values()
device = resolve_device(sm.params.device)
ex = sm.params.extraction
model = load_model(spec, sm.input.weights, device)
extract_activations(spec, model, sm.input.probe, sm.output.activations,
                    batch_size=ex["batch_size"], precision=ex["precision"],
                    channels_last=ex["channels_last"], storage_dtype=ex["storage_dtype"],
                    compression=ex["compression"], fold_bn=ex["fold_batchnorm"],
                    calibration_images=ex["calibration_images"], weights_sha256=sha256_file(sm.input.weights),
                    locking=hdf5_locking(sm))
log.info("wrote %s", sm.output.activations)
