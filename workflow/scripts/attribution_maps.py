"""Rule attribution_maps: saliency, gradient*input and epsilon-LRP maps of one model."""
from tasksim.extract import resolve_device
from tasksim.similarity.stage import attribution_file
from tasksim.snakeutils import hdf5_locking, partial_config, setup
from tasksim.zoo import load_model, model_specs

log = setup(snakemake)
sm = snakemake
cfg = partial_config(sm.params.model)
(spec,) = model_specs(cfg).values()
model = load_model(spec, sm.input.weights, resolve_device(sm.params.device))
a = sm.params.attribution
attribution_file(spec, model, sm.input.probe, sm.output.maps, sm.params.kinds, a["epsilon"],
                 a["batch_size"], a["storage_dtype"], hdf5_locking(sm))
