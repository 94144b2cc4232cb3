"""Batch-norm folding that keeps a model's module tree (so hooks on named layers still fire).

In eval mode a ``BatchNorm2d`` is a per-channel affine map; when it reads the output of a
``Conv2d`` that feeds nothing else, it can be folded into that convolution's weights and bias
(``torch.nn.utils.fusion.fuse_conv_bn_eval``). The pairs are found from the data flow traced by
torch.fx, not from module names, so any traceable model (Taskonomy's ResNet, user models) is
handled; models torch.fx cannot trace are left unchanged. Used by extraction (fast path) and by
attribution (fewer passes through batch norm).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Collection

import torch

log = logging.getLogger(__name__)


def conv_batchnorm_pairs(model: torch.nn.Module) -> list[tuple[str, str]]:
    """``(conv, batchnorm)`` module names where a ``BatchNorm2d`` reads the output of a
    ``Conv2d`` that feeds nothing else, found from the traced data flow (torch.fx).

    Returns ``[]`` for models torch.fx cannot trace (data-dependent control flow)."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as err:  # noqa: BLE001 - any tracing failure means "do not fold"
        log.info("batch-norm folding skipped: %s cannot be traced (%s)", type(model).__name__, err)
        return []
    mods = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), torch.nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, torch.fx.Node) and src.op == "call_module" and len(src.users) == 1
                and isinstance(mods.get(src.target), torch.nn.Conv2d)):
            pairs.append((str(src.target), str(node.target)))
    return pairs


def set_submodule(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    """Replace the submodule at dotted path ``name`` of ``model`` by ``module``."""
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fold_batchnorm(model: torch.nn.Module, keep: Collection[str] = ()) -> int:
    """Fold eval-mode batch norms into the convolutions feeding them, in place.

    Each folded ``BatchNorm2d`` becomes ``nn.Identity`` (its output, and a hook on it, are
    unchanged); convolutions named in ``keep`` (recorded layers, whose own output must stay
    the pre-normalisation one) are left alone. Returns the number of folded pairs."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (running statistics)")
    n = 0
    for conv_name, bn_name in conv_batchnorm_pairs(model):
        if conv_name in keep:
            continue
        fused = fuse_conv_bn_eval(model.get_submodule(conv_name), model.get_submodule(bn_name))
        set_submodule(model, conv_name, fused)
        set_submodule(model, bn_name, torch.nn.Identity())
        n += 1
    return n


def folded_copy(model: torch.nn.Module, keep: Collection[str] = ()) -> torch.nn.Module:
    """Copy of an eval-mode ``model`` with its batch norms folded (:func:`fold_batchnorm`)."""
    if model.training:
        raise ValueError("batch-norm folding needs the model in eval mode (call model.eval())")
    folded = copy.deepcopy(model)
    fold_batchnorm(folded, keep)
    return folded
