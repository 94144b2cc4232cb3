"""Rule mt_transfer_source: readouts from ONE frozen source to every target, per-image test losses.

Same computation as tasksim.minitaskonomy.transfer.transfer_losses restricted to one source
(``<task>``, ``pixels`` or ``random``): codes of the target's input variant on the transfer and
test splits, readout seed = minitaskonomy.seed, random encoder seed = minitaskonomy.seed + 12345.
Output: npz with one float array [N_test] per target.
"""
import numpy as np

from tasksim.io import atomic_path
from tasksim.minitaskonomy.data import TASK_SPECS, model_input
from tasksim.minitaskonomy.training import encode, load_encoder
from tasksim.minitaskonomy.transfer import pixel_code, random_encoder, readout_losses
from tasksim.scenes import read_scenes_h5
from tasksim.snakeutils import setup

log = setup(snakemake)
sm = snakemake
source, seed, epochs = sm.params.source, sm.params.seed, sm.params.epochs
transfer, test = read_scenes_h5(sm.input.transfer), read_scenes_h5(sm.input.test)
if source == "pixels":
    code_of = pixel_code
else:
    enc = random_encoder(seed + 12345) if source == "random" else load_encoder(sm.input.weights[0])
    code_of = lambda x: encode(enc, x)  # noqa: E731
codes = {}
out = {}
for target in sm.params.targets:
    variant = TASK_SPECS[target].input
    if variant not in codes:
        codes[variant] = (code_of(model_input(transfer, variant)), code_of(model_input(test, variant)))
    c_tr, c_te = codes[variant]
    out[target] = readout_losses(target, c_tr, transfer, c_te, test, epochs, seed)
    log.info("%s -> %s: mean test loss %.4f", source, target, float(out[target].mean()))
with atomic_path(sm.output.losses, suffix=".npz") as tmp:
    with open(tmp, "wb") as fh:
        np.savez(fh, **out)
