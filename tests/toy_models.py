"""Tiny user-model builders for tests (importable as ``toy_models:<name>``)."""
from __future__ import annotations

import torch
from torch import nn


class Scaled(nn.Module):
    """A strided convolution whose output is multiplied by ``scale`` (a constant, not a weight:
    the checkpoint is the same for every scale, the activations are not)."""

    def __init__(self, scale: float = 1.0, width: int = 4, constant: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 8, stride=8)
        self.scale = float(scale)
        self.constant = constant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)) * self.scale
        if self.constant:
            y = torch.zeros_like(y) + 1.0
        return y.flatten(1)


def scaled_net(scale: float = 1.0, width: int = 4) -> nn.Module:
    """:class:`Scaled` with the given scale and width."""
    torch.manual_seed(0)
    return Scaled(scale, width)


def constant_net(width: int = 4) -> nn.Module:
    """Every image gives the same output (a degenerate layer for RSA and CKA)."""
    torch.manual_seed(0)
    return Scaled(1.0, width, constant=True)


def count_net(depth: int = 1) -> nn.Module:
    """Annotated int argument (for the builder-signature checks)."""
    torch.manual_seed(0)
    return Scaled(1.0, 4 * depth)


def failing_net(width: int = 4) -> nn.Module:
    """A builder that fails inside the user's code."""
    raise ZeroDivisionError("division by zero in the user's module")


def save_weights(path, builder=scaled_net, **kwargs):
    """Write ``{'state_dict': ...}`` of ``builder(**kwargs)`` to ``path``; returns the path."""
    torch.save({"state_dict": builder(**kwargs).state_dict()}, path)
    return path
