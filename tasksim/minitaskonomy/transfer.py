"""Measured transfer affinity of mini-Taskonomy: frozen source encoders, trained readouts.

For every target task, a readout of fixed architecture and budget (the target's head:
:class:`~tasksim.minitaskonomy.models.DenseHead` or ``GlobalHead``, same epochs, same images)
is trained on the codes of each frozen source encoder over the transfer split and evaluated
image by image on the test split. Codes are standardised per channel (transfer-split
statistics) so that every source starts from the same scale. Two baselines:

* ``pixels``: the readout reads the image itself, area-downsampled to the code's resolution
  (3 x S/4 x S/4, standardised like a code). It has the readout's budget and no encoder, so it
  measures what the target needs beyond a frozen representation; on 2D reconstruction targets it
  beats every encoder (which is why affinities are never normalised by gain over pixels).
* ``random``: a frozen, randomly initialised encoder of the same architecture (seeded).

Inputs follow the target: for denoising / colorization targets every source (and ``pixels``)
reads the noisy / gray image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tasksim.minitaskonomy.ahp import affinity_frame, wins_vs_frame, write_affinity
from tasksim.minitaskonomy.data import MINI_TASKS, TASK_SPECS, metric_pairs, model_input, per_image_loss, prepare_target
from tasksim.minitaskonomy.models import CODE_STRIDE, build_encoder
from tasksim.minitaskonomy.training import build_head, encode, fit, load_encoder

BASELINES: tuple[str, ...] = ("pixels", "random")
#: The ``random`` baseline's encoder is initialised with seed ``minitaskonomy.seed`` + this offset,
#: so it never shares its initialisation with a readout (which use the seed itself).
RANDOM_SEED_OFFSET = 12345


def random_mini_encoder(seed: int) -> nn.Module:
    """Frozen, randomly initialised encoder (the ``random`` baseline)."""
    torch.manual_seed(seed)
    return build_encoder().eval()


def pixel_code(x: torch.Tensor) -> torch.Tensor:
    """The ``pixels`` baseline input: images area-downsampled to the code resolution."""
    return F.avg_pool2d(x, CODE_STRIDE)


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Standardise codes per channel with the statistics of ``train``."""
    mean = train.mean((0, 2, 3), keepdim=True)
    std = train.std((0, 2, 3), keepdim=True) + 1e-6
    return [(t - mean) / std for t in (train, *others)]


def readout_losses(target: str, code_tr: torch.Tensor, transfer: dict[str, np.ndarray],
                   code_te: torch.Tensor, test: dict[str, np.ndarray], epochs: int = 5,
                   seed: int = 0) -> np.ndarray:
    """Train the readout of ``target`` on transfer codes, return per-image test losses [N_test]."""
    code_tr, code_te = standardise(code_tr, code_te)
    y_tr, stats = prepare_target(target, transfer)
    y_te, _ = prepare_target(target, test, stats)
    torch.manual_seed(seed)
    head = build_head(target, in_channels=code_tr.shape[1])
    fit([head], head, code_tr, y_tr, target, epochs, seed)
    pairs = metric_pairs(int(np.prod(y_te.shape[1:])), seed=seed + 1) \
        if TASK_SPECS[target].loss == "metric" else None
    with torch.no_grad():
        return per_image_loss(target, head(code_te), y_te, pairs).numpy()


def source_code_fn(source: str, seed: int, weights: str | os.PathLike[str] | None = None
                   ) -> Callable[[torch.Tensor], torch.Tensor]:
    """The code a source gives an input batch: ``pixels`` (downsampled images), ``random`` (a
    frozen random encoder, seed ``seed + RANDOM_SEED_OFFSET``) or a trained encoder's weights."""
    if source == "pixels":
        return pixel_code
    if source == "random":
        enc = random_mini_encoder(seed + RANDOM_SEED_OFFSET)
    elif weights is None:
        raise ValueError(f"source {source!r} needs its encoder weights")
    else:
        enc = load_encoder(weights)
    return lambda x: encode(enc, x)


def source_losses(code_of: Callable[[torch.Tensor], torch.Tensor], transfer: dict[str, np.ndarray],
                  test: dict[str, np.ndarray], targets: Sequence[str] = MINI_TASKS, epochs: int = 5,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Per-image test losses ``{target: [N_test]}`` of readouts from one frozen source (its codes
    of each target's input variant, computed once per variant) to every target."""
    codes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    out: dict[str, np.ndarray] = {}
    for target in targets:
        variant = TASK_SPECS[target].input
        if variant not in codes:
            codes[variant] = (code_of(model_input(transfer, variant)), code_of(model_input(test, variant)))
        code_tr, code_te = codes[variant]
        out[target] = readout_losses(target, code_tr, transfer, code_te, test, epochs, seed)
    return out


def transfer_losses(encoders: Mapping[str, nn.Module], transfer: dict[str, np.ndarray],
                    test: dict[str, np.ndarray], targets: Sequence[str] = MINI_TASKS,
                    epochs: int = 5, seed: int = 0) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per-image test losses of every source (``encoders`` + ``pixels`` + ``random``) on every
    target: returns the source order and ``{target: float [sources, N_test]}``."""
    code_fns: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        name: (lambda x, enc=enc: encode(enc, x)) for name, enc in encoders.items()}
    code_fns.update({b: source_code_fn(b, seed) for b in BASELINES})
    per_source = {name: source_losses(fn, transfer, test, targets, epochs, seed)
                  for name, fn in code_fns.items()}
    sources = list(code_fns)
    return sources, {t: np.stack([per_source[s][t] for s in sources]) for t in targets}


def train_transfers(checkpoints: Mapping[str, str | os.PathLike[str]],
                    transfer_h5: str | os.PathLike[str], test_h5: str | os.PathLike[str],
                    out_dir: str | os.PathLike[str], targets: Sequence[str] | None = None,
                    epochs: int = 5, seed: int = 0, threads: int = 1) -> dict[str, Path]:
    """Measure the mini-Taskonomy affinity from zoo checkpoints ``{task: path}``.

    Writes into ``out_dir``: ``losses.npz`` (per target: ``[sources, N_test]``; plus ``sources``),
    ``affinity.csv`` / ``all_affinities.pkl`` (AHP affinity, source x target, columns sum to 1)
    and ``wins_vs_pixels.csv`` / ``wins_vs_pixels.pkl``. Returns those paths by key.
    """
    from tasksim.io import atomic_path
    from tasksim.scenes import read_scenes_h5

    torch.set_num_threads(threads)
    targets = list(targets) if targets is not None else [t for t in MINI_TASKS if t in checkpoints]
    encoders = {t: load_encoder(p) for t, p in checkpoints.items()}
    sources, losses = transfer_losses(encoders, read_scenes_h5(transfer_h5), read_scenes_h5(test_h5),
                                      targets, epochs, seed)
    out = Path(out_dir)
    paths = {"losses": out / "losses.npz", "affinity": out / "affinity.csv",
             "affinity_pkl": out / "all_affinities.pkl", "wins_vs_pixels": out / "wins_vs_pixels.csv",
             "wins_vs_pixels_pkl": out / "wins_vs_pixels.pkl"}
    with atomic_path(paths["losses"], suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, sources=np.array(sources), **losses)
    write_affinity(affinity_frame(losses, sources), paths["affinity"], paths["affinity_pkl"])
    write_affinity(wins_vs_frame(losses, sources, "pixels"), paths["wins_vs_pixels"],
                   paths["wins_vs_pixels_pkl"])
    return paths
