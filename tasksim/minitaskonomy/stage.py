"""Path-in/path-out steps of the Mini-Taskonomy stage (docs/data-layout.md, ``D/minitaskonomy/``):
an encoder (and its head) per task, a categorical head's probabilities of the probe images, the
readouts of one source, the measured affinity. The rule scripts in ``workflow/scripts/mt_*.py``
only unpack Snakemake's objects and call these.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tasksim.io import atomic_path, open_h5, read_str, sha256_file
from tasksim.minitaskonomy.ahp import affinity_frame, wins_vs_frame, write_affinity
from tasksim.minitaskonomy.data import MINI_TASKS
from tasksim.minitaskonomy.heads import has_categorical_head, head_probabilities, write_head_probabilities
from tasksim.minitaskonomy.training import load_encoder, load_head, train_task_encoder
from tasksim.minitaskonomy.transfer import source_code_fn, source_losses
from tasksim.scenes import read_scenes_h5

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def encoder_seed(task: str, seed: int) -> int:
    """Training seed of one task's encoder: ``minitaskonomy.seed`` + the task's index in
    :data:`MINI_TASKS` (independent of which tasks are configured)."""
    return seed + MINI_TASKS.index(task)


def train_encoder_files(task: str, scenes: PathLike, encoders_dir: PathLike, weights_out: PathLike,
                        sha256_out: PathLike, head_out: PathLike, epochs: int, seed: int,
                        threads: int = 1) -> Path:
    """Train the encoder of one task: ``<encoders_dir>/<task>_encoder-<sha256>.pth`` (zoo format,
    hash in the name), a byte-identical copy at ``weights_out`` (where extraction reads every
    model's weights), ``sha256_out`` (a SHA256SUMS line naming the hashed file) and at
    ``head_out`` the head trained with it (``{'state_dict': ...}`` of ``build_head(task)``; the
    categorical ones are read by LEEP and NCE)."""
    enc_dir = Path(encoders_dir)
    for stale in enc_dir.glob(f"{task}_encoder-*.pth"):
        stale.unlink()
    s = encoder_seed(task, seed)
    ckpt = train_task_encoder(task, scenes, enc_dir, epochs=epochs, seed=s, threads=max(1, threads),
                              head_out=head_out)
    digest = sha256_file(ckpt)
    with atomic_path(weights_out, suffix=".pth") as tmp:
        shutil.copyfile(ckpt, tmp)
    if sha256_file(weights_out) != digest:
        raise RuntimeError(f"copy of {ckpt} to {weights_out} does not match its SHA-256")
    with atomic_path(sha256_out, suffix=".sha256") as tmp:
        tmp.write_text(f"{digest}  {ckpt.name}\n")
    log.info("encoder %s (seed %d, %d epochs): %s", task, s, epochs, ckpt)
    return ckpt


def head_probe_file(task: str, weights: PathLike, head: PathLike, probe: PathLike, out: PathLike, *,
                    low_saturation: bool = False, locking: bool | None = None) -> None:
    """Class probabilities ``[N, C]`` of one task's categorical head on the probe images
    (:func:`tasksim.minitaskonomy.heads.head_probabilities`), with the probe's ids and hash.

    The images become encoder input as in extraction (:func:`tasksim.probe.preprocess.network_input`
    with the model's ``low_saturation``, False for every Mini-Taskonomy encoder); encoder and
    head run in float32, eval mode, as trained (no batch-norm folding or reduced precision: the
    probabilities are the trained classifier's)."""
    from tasksim.probe.preprocess import network_input

    if not has_categorical_head(task):
        raise ValueError(f"the head of {task} is not a classifier (its loss is not cross-entropy)")
    with open_h5(probe, "r", locking) as f:
        images, ids = f["images"][()], read_str(f["ids"])
        probe_sha = str(f.attrs["content_sha256"])
    probs = head_probabilities(load_encoder(weights), load_head(task, head),
                               network_input(images, low_saturation))
    write_head_probabilities(out, probs, task=task, ids=ids, probe_sha256=probe_sha,
                             weights_sha256=sha256_file(weights), head_sha256=sha256_file(head))
    log.info("head of %s on %d probe images: %d classes, mean probabilities %s", task, len(ids),
             probs.shape[1], np.round(probs.mean(axis=0), 3).tolist())


def transfer_source_file(source: str, weights: PathLike | None, transfer: PathLike, test: PathLike,
                         targets: Sequence[str], epochs: int, seed: int, out: PathLike) -> None:
    """Readouts from one frozen source (a task's encoder, ``pixels`` or ``random``) to every
    target; ``out``: npz with one float array ``[N_test]`` of per-image test losses per target."""
    losses = source_losses(source_code_fn(source, seed, weights), read_scenes_h5(transfer),
                           read_scenes_h5(test), list(targets), epochs, seed)
    for target, v in losses.items():
        log.info("%s -> %s: mean test loss %.4f", source, target, float(v.mean()))
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **losses)


def affinity_files(loss_files: Sequence[PathLike], sources: Sequence[str], targets: Sequence[str],
                   losses_out: PathLike, affinity_csv: PathLike, affinity_pkl: PathLike,
                   wins_csv: PathLike, wins_pkl: PathLike) -> None:
    """Gather the per-source losses (one file per source, in ``sources`` order) into
    ``losses_out`` (per target ``[sources, N_test]``), then the AHP affinity and the win rates
    against pixels (CSV + Taskonomy-style pickle each)."""
    sources, targets = list(sources), list(targets)
    per_source = [np.load(p) for p in loss_files]
    losses = {t: np.stack([ps[t] for ps in per_source]) for t in targets}
    with atomic_path(losses_out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, sources=np.array(sources), **losses)
    aff = affinity_frame(losses, sources)
    write_affinity(aff, affinity_csv, affinity_pkl)
    write_affinity(wins_vs_frame(losses, sources, "pixels"), wins_csv, wins_pkl)
    best = {t: aff[t].drop([t, "pixels", "random"], errors="ignore").idxmax() for t in targets}
    log.info("affinity %s x %s written; best other source per target: %s", len(sources), len(targets), best)
