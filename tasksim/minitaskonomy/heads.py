"""The categorical heads of Mini-Taskonomy's encoders, read on the probe images.

LEEP and NCE (:mod:`tasksim.transferability.estimators`) score a source by its classifier's
class probabilities ``[N, C_s]`` on the target images. Every Mini-Taskonomy encoder is trained
together with a head (:func:`tasksim.minitaskonomy.training.train_encoder`); the heads of the
tasks trained with cross-entropy (``TASK_SPECS[task].loss == "ce"``: ``class_object``, a global
head over image-level classes, and ``segment_semantic``, a dense head over per-pixel classes)
are such classifiers. :func:`head_probabilities` reads one of them on a batch of encoder inputs;
the head-probability file (docs/data-layout.md, ``D/minitaskonomy/heads/{task}_probe.h5``)
keeps the result for the probe images with the probe set's ids and hash, so that the
transferability stage refuses probabilities of other images.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from tasksim.io import atomic_path, open_h5, read_str, str_dataset, versions
from tasksim.minitaskonomy.data import TASK_SPECS

PathLike = str | os.PathLike[str]

#: ``format`` attribute of a head-probability file.
FORMAT = "tasksim-head-probabilities-1"
#: How each kind of head's outputs become one class distribution per image (``reading`` attribute).
READINGS = {"global": "softmax of the logits",
            "dense": "per-pixel softmax of the logits, averaged over the pixels"}


def has_categorical_head(task: str) -> bool:
    """Whether the head trained with ``task``'s encoder is a classifier (cross-entropy loss)."""
    return TASK_SPECS[task].loss == "ce"


def categorical_head_tasks(tasks: Iterable[str]) -> list[str]:
    """The tasks of ``tasks`` (in their order) whose trained head is a classifier."""
    return [t for t in tasks if has_categorical_head(t)]


@torch.no_grad()
def head_probabilities(encoder: nn.Module, head: nn.Module, x: torch.Tensor,
                       batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``[N, C]`` (float64, rows sum to 1) of a categorical head on the
    encoder inputs ``x`` (``N x 3 x S x S``), both modules in eval mode, float32.

    A global head's logits ``[N, C]`` give their softmax. A dense head's logits ``[N, C, H, W]``
    give the per-pixel softmax averaged over the pixels: the class distribution of a pixel drawn
    uniformly from the image. LEEP and NCE read one distribution per image; the average keeps
    every pixel's prediction (where the majority class of the mean map would keep one class), and
    is a distribution again, so LEEP's empirical joint of source and target class stays defined.
    """
    encoder.eval()
    head.eval()
    parts = []
    for lo in range(0, len(x), batch_size):
        logits = head(encoder(x[lo:lo + batch_size])).double()
        if logits.ndim not in (2, 4):
            raise ValueError(f"a categorical head gives logits [N, C] or [N, C, H, W], got {tuple(logits.shape)}")
        p = torch.softmax(logits, dim=1)
        parts.append(p.mean(dim=(2, 3)) if p.ndim == 4 else p)
    if not parts:
        raise ValueError("no inputs: head probabilities need at least one image")
    return torch.cat(parts).numpy()


def write_head_probabilities(path: PathLike, probabilities: np.ndarray, *, task: str,
                             ids: Sequence[str], probe_sha256: str, weights_sha256: str,
                             head_sha256: str) -> None:
    """Write one task's head probabilities of the probe images ``[N, C]`` (probe order) with the
    probe's ids and hash and the SHA-256 of the encoder and head files they come from (atomic)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(ids):
        raise ValueError(f"{task}: head probabilities of shape {p.shape} for {len(ids)} probe images")
    if not np.isfinite(p).all() or (p < 0).any() or np.abs(p.sum(axis=1) - 1.0).max() > 1e-6:
        raise ValueError(f"{task}: head probabilities must be finite, non-negative and sum to 1 per image")
    with atomic_path(path, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as f:
            f.create_dataset("probabilities", data=p)
            str_dataset(f, "ids", list(ids))
            f.attrs.update({
                "format": FORMAT, "task": task, "reading": READINGS[TASK_SPECS[task].kind],
                "probe_sha256": probe_sha256, "n_images": int(p.shape[0]), "n_classes": int(p.shape[1]),
                "weights_sha256": weights_sha256, "head_sha256": head_sha256,
                "versions": json.dumps(versions()),
            })


def read_head_probabilities(path: PathLike, task: str, locking: bool | None = None) -> np.ndarray:
    """Probabilities ``[N, C]`` of a file written by :func:`write_head_probabilities`; refused
    unless it holds ``task``'s head (the probe set is checked by the caller against its labels,
    :func:`tasksim.targets.store.check_same_probe`)."""
    with open_h5(path, "r", locking) as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)} is not a head-probability file (format "
                             f"{f.attrs.get('format')!r})")
        if str(f.attrs["task"]) != task:
            raise ValueError(f"{os.fspath(path)} holds the head of {f.attrs['task']}, not of {task}")
        probs = f["probabilities"][()]
        if len(read_str(f["ids"])) != len(probs):
            raise ValueError(f"{os.fspath(path)}: {len(probs)} rows for {len(read_str(f['ids']))} ids")
        return probs
