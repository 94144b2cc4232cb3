"""Architectures of mini-Taskonomy: one encoder for every task, dense and global heads.

The encoder mirrors the Taskonomy encoder in miniature: an input of N x 3 x S x S in [-1, 1]
becomes an 8-channel code of N x 8 x S/4 x S/4 (8 x 16 x 16 for 64 x 64 images, the size of the
Taskonomy code). Its recorded layers are the attributes ``block1``, ``block2``, ``block3`` and
``encoder_output`` (``model.get_submodule(name)``); the builder is importable by path as
``tasksim.minitaskonomy.models:build_encoder``, so the pipeline treats these encoders like any
user model (builder + ``{'state_dict': ...}`` weights file + layer names).
"""

from __future__ import annotations

import torch
from torch import nn

#: Layer names recorded by the similarity pipeline, shallow to deep.
ENCODER_LAYERS: tuple[str, ...] = ("block1", "block2", "block3", "encoder_output")
CODE_CHANNELS = 8
CODE_STRIDE = 4


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class MiniEncoder(nn.Module):
    """Small CNN encoder (~70k parameters): S x S x 3 -> 8 x S/4 x S/4 code."""

    def __init__(self, width: int = 40) -> None:
        super().__init__()
        self.block1 = nn.Sequential(_conv(3, 16, 2), _conv(16, 32, 2))  # S/4
        self.block2 = nn.Sequential(_conv(32, width), _conv(width, width))
        self.block3 = nn.Sequential(_conv(width, width), _conv(width, width))
        self.encoder_output = nn.Conv2d(width, CODE_CHANNELS, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Code of a batch of images in [-1, 1]."""
        x = self.block1(x)
        x = self.block2(x)
        x = x + self.block3(x)
        return self.encoder_output(x)


def build_encoder() -> MiniEncoder:
    """Builder used by the model zoo (``tasksim.minitaskonomy.models:build_encoder``)."""
    return MiniEncoder()


class DenseHead(nn.Module):
    """Decoder from a code (C x h x w) to a dense prediction (out x 2h x 2w)."""

    def __init__(self, out_channels: int, in_channels: int = CODE_CHANNELS, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(width, out_channels, 3, 1, 1))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)


class GlobalHead(nn.Module):
    """MLP from a code pooled to 4 x 4 to an image-level output."""

    def __init__(self, out_dim: int, in_channels: int = CODE_CHANNELS, width: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                 nn.Linear(in_channels * 16, width), nn.ReLU(inplace=True),
                                 nn.Linear(width, out_dim))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)
