"""Geometry of dense label maps: the probe images' centre crop, then a resize per label kind.

A label map is cut like its image (:func:`tasksim.probe.preprocess.center_crop`: the central square)
so that pixel ``(i, j)`` of the label still describes pixel ``(i, j)`` of the probe image. It is
then resized to the requested side: class and instance maps by nearest neighbour (labels are
never mixed), regression maps by area averaging (a missing value, NaN, spreads to the output
pixels whose area it touches).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tasksim.probe.preprocess import center_crop
from tasksim.targets.kinds import LabelKind


def nearest_indices(side: int, size: int) -> np.ndarray:
    """Source index of each of ``size`` output pixels sampled from ``side`` input pixels (centres)."""
    return np.minimum(((np.arange(size) + 0.5) * side / size).astype(np.int64), side - 1)


def resize_map(label: np.ndarray, kind: LabelKind, size: int) -> np.ndarray:
    """Resize a square map ``[S, S]`` (class / instance) or ``[S, S, K]`` (regression) to ``size``."""
    side = label.shape[0]
    if label.shape[1] != side:
        raise ValueError(f"resize_map expects a square map, got shape {label.shape}")
    if side == size:
        return label
    if kind == "dense_regression":
        x = torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32)).permute(2, 0, 1)[None]
        out = F.interpolate(x, size=(size, size), mode="area")[0].permute(1, 2, 0)
        return np.ascontiguousarray(out.numpy())
    idx = nearest_indices(side, size)
    return np.ascontiguousarray(label[np.ix_(idx, idx)])


def fit_map(label: np.ndarray, kind: LabelKind, size: int | None) -> np.ndarray:
    """Centre square crop, then :func:`resize_map` to ``size`` (``None``: crop only)."""
    square = center_crop(label)
    return square if size is None else resize_map(square, kind, size)
