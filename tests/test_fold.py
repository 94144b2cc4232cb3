"""Batch-norm folding (tasksim.extract.fold) and the extraction model set-up that uses it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tasksim.extract import forward_layers, prepare_for_inference
from tasksim.extract.fold import conv_batchnorm_pairs, fold_batchnorm, folded_copy
from tasksim.zoo import TASKONOMY_LAYERS, random_encoder, taskonomy_encoder


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so folding is not an identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g))
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g))
    return model.eval()


class Branchy(nn.Module):
    """conv_a feeds a BN and a skip connection (must not fold); conv_b -> bn_b folds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(4)
        self.conv_b = nn.Conv2d(4, 4, 3, padding=1)
        self.bn_b = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv_a(x)
        return self.bn_b(self.conv_b(self.bn_a(a))) + a


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return y if y.sum() > 0 else -y


def test_taskonomy_encoder_folds_every_bn_and_keeps_all_layer_outputs() -> None:
    net = taskonomy_encoder()
    net.load_state_dict(random_encoder(0))
    net.eval()
    folded = folded_copy(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 54  # original untouched
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    ref, out = forward_layers(net, TASKONOMY_LAYERS, x), forward_layers(folded, TASKONOMY_LAYERS, x)
    for name in TASKONOMY_LAYERS:
        scale = ref[name].abs().max()
        assert scale > 0
        assert torch.allclose(out[name], ref[name], atol=1e-4 * float(scale)), name


def test_conv_with_a_second_consumer_is_not_folded() -> None:
    model = _randomise_bn(Branchy())
    assert conv_batchnorm_pairs(model) == [("conv_b", "bn_b")]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
        folded = folded_copy(model)
        assert isinstance(folded.bn_a, nn.BatchNorm2d) and isinstance(folded.bn_b, nn.Identity)
        assert torch.allclose(folded(x), ref, atol=1e-5)


def test_recorded_conv_is_kept_so_its_hook_sees_the_pre_bn_output() -> None:
    model = _randomise_bn(Branchy())
    x = torch.randn(2, 3, 8, 8)
    layers = {"b": "conv_b"}
    ref = forward_layers(model, layers, x)["b"]
    kept = folded_copy(model, keep={"conv_b"})
    assert isinstance(kept.bn_b, nn.BatchNorm2d)
    assert torch.allclose(forward_layers(kept, layers, x)["b"], ref, atol=1e-6)
    # folding it anyway would change what the hook records: the test above is not vacuous
    assert not torch.allclose(forward_layers(folded_copy(model), layers, x)["b"], ref, atol=1e-3)


def test_untraceable_model_is_left_unfolded() -> None:
    model = _randomise_bn(Untraceable())
    assert conv_batchnorm_pairs(model) == []
    assert fold_batchnorm(model) == 0
    assert isinstance(model.bn, nn.BatchNorm2d)


def test_training_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(Branchy().train())


def test_prepare_for_inference_leaves_the_callers_model_alone() -> None:
    model = _randomise_bn(Branchy()).train()  # prepare_for_inference must not switch it to eval
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = prepare_for_inference(model, {"out": "bn_b"}, precision="bf16", channels_last=True,
                                 fp32_modules=("conv_a",))
    assert fast.conv_b.weight.dtype == torch.bfloat16 and fast.conv_a.weight.dtype == torch.float32
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert isinstance(model.bn_b, nn.BatchNorm2d) and model.conv_b.weight.dtype == torch.float32
    assert model.training and not fast.training
