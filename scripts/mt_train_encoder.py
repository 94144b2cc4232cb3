"""Rule mt_train_encoder: train the encoder of one task; zoo checkpoint + fixed-name copy.

The module writes ``<encoders>/<task>_encoder-<sha256>.pth`` (zoo format, hash in the name); the
rule's outputs are a byte-identical copy at ``data_dir/weights/<task>.pth`` (where extraction
reads every model's weights) and ``<encoders>/<task>.sha256`` (a SHA256SUMS line naming the
hashed file). Seed: minitaskonomy.seed + the task's index in MINI_TASKS (independent of which
tasks are configured).
"""
import shutil
from pathlib import Path

from tasksim.io import sha256_file
from tasksim.minitaskonomy import MINI_TASKS, train_task_encoder
from tasksim.snakeutils import setup

log = setup(snakemake)
sm = snakemake
task, enc_dir = sm.params.task, Path(sm.params.encoders)
for stale in enc_dir.glob(f"{task}_encoder-*.pth"):
    stale.unlink()
seed = sm.params.seed + MINI_TASKS.index(task)
ckpt = train_task_encoder(task, sm.input.scenes, enc_dir, epochs=sm.params.epochs, seed=seed,
                          threads=max(1, int(sm.threads)))
digest = sha256_file(ckpt)
tmp = Path(sm.output.weights).with_suffix(".pth.tmp")
shutil.copyfile(ckpt, tmp)
tmp.replace(sm.output.weights)
if sha256_file(sm.output.weights) != digest:
    raise RuntimeError(f"copy of {ckpt} to {sm.output.weights} does not match its SHA-256")
Path(sm.output.sha256).write_text(f"{digest}  {ckpt.name}\n")
log.info("encoder %s (seed %d, %d epochs): %s", task, seed, sm.params.epochs, ckpt)
