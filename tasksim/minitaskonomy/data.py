"""Mini-Taskonomy task definitions: inputs, targets and per-image losses.

Lessons of the prototype are built in: squared error (never L1) so that sparse targets (edges,
keypoints, curvature) are not fitted by an all-zero median; every regression target is
standardised per channel (statistics of the split it is trained on, passed on to the split it is
evaluated on); targets defined on a variant input (denoising: noisy image, colorization: gray
image) are always predicted from that variant, by the task's own encoder and by every source
encoder during transfer. Dense targets are predicted at half the image resolution
(area-averaged; class maps subsampled), image-level targets from the pooled code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tasksim import scenes


@dataclass(frozen=True)
class TaskSpec:
    """How one task is trained: input variant, output shape and loss."""

    name: str
    input: str  # "rgb", "noisy" or "gray"
    kind: str  # "dense" or "global"
    out: int  # output channels (dense) or dimensions (global)
    loss: str  # "l2" (standardised), "ce" (classes), "metric" (segment embedding)


_N_SEM = len(scenes.SEMANTIC_CLASSES)
_N_OBJ = len(scenes.OBJECT_CLASSES)
EMBED_DIM = 8

TASK_SPECS: dict[str, TaskSpec] = {s.name: s for s in (
    TaskSpec("autoencoding", "rgb", "dense", 3, "l2"),
    TaskSpec("denoising", "noisy", "dense", 3, "l2"),
    TaskSpec("colorization", "gray", "dense", 3, "l2"),
    TaskSpec("edge_texture", "rgb", "dense", 1, "l2"),
    TaskSpec("edge_occlusion", "rgb", "dense", 1, "l2"),
    TaskSpec("keypoints2d", "rgb", "dense", 1, "l2"),
    TaskSpec("keypoints3d", "rgb", "dense", 1, "l2"),
    TaskSpec("depth_zbuffer", "rgb", "dense", 1, "l2"),
    TaskSpec("depth_euclidean", "rgb", "dense", 1, "l2"),
    TaskSpec("normal", "rgb", "dense", 3, "l2"),
    TaskSpec("reshading", "rgb", "dense", 1, "l2"),
    TaskSpec("curvature", "rgb", "dense", 2, "l2"),
    TaskSpec("segment_unsup2d", "rgb", "dense", EMBED_DIM, "metric"),
    TaskSpec("segment_unsup25d", "rgb", "dense", EMBED_DIM, "metric"),
    TaskSpec("segment_semantic", "rgb", "dense", _N_SEM, "ce"),
    TaskSpec("class_object", "rgb", "global", _N_OBJ, "ce"),
    TaskSpec("room_layout", "rgb", "global", 8, "l2"),
)}
#: The 17 mini-Taskonomy tasks (canonical names).
MINI_TASKS: tuple[str, ...] = tuple(TASK_SPECS)
INPUT_KEYS = {"rgb": "rgb", "noisy": "input_noisy", "gray": "input_gray"}


def model_input(data: dict[str, np.ndarray], variant: str) -> torch.Tensor:
    """Images of an input variant as a float tensor N x 3 x S x S in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(data[INPUT_KEYS[variant]]))
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def _pool2(x: np.ndarray) -> np.ndarray:
    """Area-average N x C x S x S by 2."""
    n, c, s, _ = x.shape
    return x.reshape(n, c, s // 2, 2, s // 2, 2).mean((3, 5))


def raw_target(task: str, data: dict[str, np.ndarray]) -> np.ndarray:
    """Unstandardised target of a task: float N x C x S/2 x S/2 (dense regression), int64
    N x S/2 x S/2 (class / segment maps), int64 N (classes) or float N x D (global)."""
    y = data[task]
    spec = TASK_SPECS[task]
    if spec.kind == "global":
        return y.astype(np.int64) if spec.loss == "ce" else y.astype(np.float32)
    if spec.loss in ("ce", "metric"):
        return np.ascontiguousarray(y[:, ::2, ::2]).astype(np.int64)
    y = y.astype(np.float32)
    if y.dtype == np.float32 and data[task].dtype == np.uint8:
        y = y / 255.0
    y = y[:, None] if y.ndim == 3 else np.moveaxis(y, -1, 1)
    return _pool2(y).astype(np.float32)


def target_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a regression target (axis 1 = channels)."""
    axes = (0,) + tuple(range(2, y.ndim))
    mean = y.mean(axes, keepdims=True)[0]
    std = y.std(axes, keepdims=True)[0] + 1e-6
    return mean.astype(np.float32), std.astype(np.float32)


def prepare_target(task: str, data: dict[str, np.ndarray],
                   stats: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray] | None]:
    """Target tensor of ``task`` (standardised per channel for L2 tasks, with ``stats`` or the
    split's own statistics) and the statistics used (None for class / segment targets)."""
    y = raw_target(task, data)
    if TASK_SPECS[task].loss != "l2":
        return torch.from_numpy(y), None
    stats = target_stats(y) if stats is None else stats
    return torch.from_numpy((y - stats[0]) / stats[1]), stats


def metric_pairs(n_pixels: int, n_pairs: int = 512, seed: int = 0) -> torch.Tensor:
    """Fixed random pixel pairs [2, n_pairs] for the segment embedding loss."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_pixels, (2, n_pairs), generator=g)


def per_image_loss(task: str, pred: torch.Tensor, target: torch.Tensor,
                   pairs: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of every image in a batch (shape N): mean squared error in standardised units,
    cross-entropy, or for segments a contrastive pair loss (same segment: squared distance;
    different: squared hinge at distance 1), same- and different-segment pairs weighted equally."""
    spec = TASK_SPECS[task]
    n = pred.shape[0]
    if spec.loss == "l2":
        return (pred - target).pow(2).reshape(n, -1).mean(1)
    if spec.loss == "ce":
        return F.cross_entropy(pred, target, reduction="none").reshape(n, -1).mean(1)
    if pairs is None:
        pairs = metric_pairs(target[0].numel())
    emb = pred.reshape(n, pred.shape[1], -1)
    lab = target.reshape(n, -1)
    ei, ej = emb[:, :, pairs[0]], emb[:, :, pairs[1]]
    d2 = (ei - ej).pow(2).sum(1)
    same = (lab[:, pairs[0]] == lab[:, pairs[1]]).float()
    diff = 1.0 - same
    pos = (same * d2).sum(1) / same.sum(1).clamp(min=1)
    neg = (diff * F.relu(1.0 - (d2 + 1e-8).sqrt()).pow(2)).sum(1) / diff.sum(1).clamp(min=1)
    return pos + neg
