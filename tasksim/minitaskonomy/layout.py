"""Paths of the Mini-Taskonomy stage's files under ``data_dir`` (docs/data-layout.md).

One place for them: the rule file wires them, and :func:`tasksim.config.resolve` points the
taxonomy stage's ground truth at the measured affinity.
"""

from __future__ import annotations

SPLITS: tuple[str, ...] = ("train", "transfer", "test")


def stage_dir(data_dir: str) -> str:
    """``D/minitaskonomy``."""
    return f"{data_dir}/minitaskonomy"


def files(data_dir: str) -> dict[str, str]:
    """The measured transfer: per-image losses, the AHP affinity and the wins over pixels."""
    d = stage_dir(data_dir)
    return {
        "losses": f"{d}/transfer/losses.npz",
        "affinity": f"{d}/affinity.csv",
        "affinity_pkl": f"{d}/all_affinities.pkl",
        "wins_vs_pixels": f"{d}/wins_vs_pixels.csv",
        "wins_vs_pixels_pkl": f"{d}/wins_vs_pixels.pkl",
    }


def scenes(data_dir: str) -> dict[str, str]:
    """Rendered scenes of each split."""
    return {split: f"{stage_dir(data_dir)}/scenes_{split}.h5" for split in SPLITS}


def weights(data_dir: str, task: str) -> str:
    """Weights of one task's encoder, where the zoo stage expects every model's weights."""
    return f"{data_dir}/weights/{task}.pth"


def head(data_dir: str, task: str) -> str:
    """Weights of the head trained together with one task's encoder (``{'state_dict': ...}``
    of :func:`tasksim.minitaskonomy.training.build_head`)."""
    return f"{stage_dir(data_dir)}/heads/{task}.pth"


def head_probe(data_dir: str, task: str) -> str:
    """Class probabilities of a categorical head on the probe images (read by LEEP and NCE)."""
    return f"{stage_dir(data_dir)}/heads/{task}_probe.h5"
