"""Training of the mini-Taskonomy task encoders, their zoo-format checkpoints and their heads' weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tasksim.minitaskonomy.data import TASK_SPECS, metric_pairs, model_input, per_image_loss, prepare_target
from tasksim.minitaskonomy.models import DenseHead, GlobalHead, MiniEncoder, build_encoder

BUILDER = "tasksim.minitaskonomy.models:build_encoder"


def build_head(task: str, in_channels: int = 8) -> nn.Module:
    """Task head (decoder for dense tasks, MLP for image-level tasks) of fixed architecture."""
    spec = TASK_SPECS[task]
    cls = DenseHead if spec.kind == "dense" else GlobalHead
    return cls(spec.out, in_channels=in_channels)


def fit(modules: list[nn.Module], forward, x: torch.Tensor, y: torch.Tensor, task: str,
        epochs: int, seed: int, batch_size: int = 32, lr: float = 2e-3) -> list[float]:
    """Minimise the mean per-image loss of ``task`` with Adam over shuffled mini-batches.

    ``forward(xb) -> prediction``; returns the mean training loss of every epoch.
    """
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1),
                                                pct_start=0.15)
    pairs = metric_pairs(int(np.prod(y.shape[1:])), seed=seed) if TASK_SPECS[task].loss == "metric" else None
    for m in modules:
        m.train()
    history = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = per_image_loss(task, forward(x[idx]), y[idx], pairs).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / n)
    for m in modules:
        m.eval()
    return history


def train_encoder(task: str, data: dict[str, np.ndarray], epochs: int = 4, seed: int = 0,
                  batch_size: int = 32) -> tuple[MiniEncoder, nn.Module, list[float]]:
    """Train the encoder and head of ``task`` on a rendered split (``render_batch`` form)."""
    torch.manual_seed(seed)
    enc, head = build_encoder(), build_head(task)
    x = model_input(data, TASK_SPECS[task].input)
    y, _ = prepare_target(task, data)
    hist = fit([enc, head], lambda xb: head(enc(xb)), x, y, task, epochs, seed, batch_size)
    return enc, head, hist


def save_encoder_checkpoint(encoder: nn.Module, task: str, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``{'state_dict': ...}`` as ``<task>_encoder-<sha256 of the file>.pth`` in ``out_dir``
    (:func:`tasksim.zoo.save_checkpoint`: same weights, same bytes, same name)."""
    from tasksim.zoo import save_checkpoint

    return save_checkpoint({k: v.detach().clone() for k, v in encoder.state_dict().items()}, out_dir, task)


def load_encoder(path: str | os.PathLike[str]) -> MiniEncoder:
    """Build the encoder and load a zoo-format checkpoint (eval mode)."""
    enc = build_encoder()
    enc.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return enc.eval()


def save_head(head: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write the trained head's ``{'state_dict': ...}`` to ``path`` (atomic). Serialised in memory
    first, as the encoder checkpoints, so the bytes depend on the weights only."""
    import io

    from tasksim.io import atomic_path

    buf = io.BytesIO()
    torch.save({"state_dict": {k: v.detach().clone() for k, v in head.state_dict().items()}}, buf)
    with atomic_path(path, suffix=".pth") as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)


def load_head(task: str, path: str | os.PathLike[str]) -> nn.Module:
    """:func:`build_head` of ``task`` with the weights of a file written by :func:`save_head`
    (strict: every key must match; eval mode)."""
    head = build_head(task)
    head.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return head.eval()


def train_task_encoder(task: str, scenes_h5: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                       epochs: int = 4, seed: int = 0, threads: int = 1,
                       head_out: str | os.PathLike[str] | None = None) -> Path:
    """Train the encoder of ``task`` on a rendered split file and write its checkpoint; returns
    the checkpoint path ``out_dir/<task>_encoder-<sha256>.pth``. With ``head_out`` the head
    trained with it is written there too (:func:`save_head`); the encoder's bytes are the same
    either way."""
    from tasksim.scenes import read_scenes_h5

    torch.set_num_threads(threads)
    enc, head, _ = train_encoder(task, read_scenes_h5(scenes_h5), epochs, seed)
    if head_out is not None:
        save_head(head, head_out)
    return save_encoder_checkpoint(enc, task, out_dir)


@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Codes of a frozen encoder (eval mode) for inputs ``x``."""
    encoder.eval()
    return torch.cat([encoder(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
