"""Tests of tasksim.similarity.attribution: gradients, DeepExplain epsilon-LRP, storage and cosine similarity."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from visualpriors.taskonomy_network import TaskonomyEncoder

from tasksim.similarity.attribution import (
    METHODS,
    attribution_maps,
    cosine_similarity_matrix,
    epsilon_lrp_rules,
    folded_for_attribution,
    per_image_cosine,
    raw_attributions,
    to_float16,
)

# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Structured images in [-1, 1]: random colour gradients plus smooth Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    imgs = []
    for _ in range(n):
        c = torch.rand(3, 3, generator=g)
        img = c[:, 0, None, None] * xx + c[:, 1, None, None] * yy + 0.3 * c[:, 2, None, None]
        for _ in range(6):
            cy, cx = torch.rand(2, generator=g)
            s = 0.05 + 0.15 * torch.rand(1, generator=g)
            col = torch.rand(3, 1, 1, generator=g) * 2 - 1
            img = img + col * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
        lo, hi = img.amin(), img.amax()
        imgs.append((img - lo) / (hi - lo) * 2 - 1)
    return torch.stack(imgs)


def calibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``images`` (then eval mode)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        nn.Module.train(bn, True)
    with torch.no_grad():
        model(images)
    for bn in bns:
        nn.Module.train(bn, False)


def shuffled_copy(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with the entries of every parameter tensor randomly permuted."""
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            flat = p.reshape(-1)
            p.copy_(flat[torch.randperm(flat.numel(), generator=g)].reshape(p.shape))
    return other


def tiny_convnet(seed: int = 0) -> nn.Module:
    """Small float64 conv net with biases, eval-mode batch norm, max pooling and ReLUs."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(27, 5), nn.ReLU(),
    ).double()
    bn = net[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return net.eval()


def mlp_weights(seed: int, sizes: tuple[int, ...], zero_bias: bool = False
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random float64 (W, b) pairs for an MLP with layer widths ``sizes``."""
    rng = np.random.default_rng(seed)
    out = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0, 1 / np.sqrt(d_in), (d_out, d_in))
        b = np.zeros(d_out) if zero_bias else rng.normal(0, 0.3, d_out)
        out.append((w, b))
    return out


def torch_mlp(weights: list[tuple[np.ndarray, np.ndarray]], act: type[nn.Module] = nn.ReLU
              ) -> nn.Module:
    """nn.Sequential(Flatten, Linear, act, Linear, act, ...) with the given weights, float64."""
    layers: list[nn.Module] = [nn.Flatten()]
    for w, b in weights:
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, act()]
    return nn.Sequential(*layers).eval()


def numpy_epsilon_rule(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, eps: float,
                       act=lambda z: np.maximum(z, 0.0)) -> np.ndarray:
    """Explicit layer-wise LRP-epsilon of sum(output) for an MLP whose every layer is affine + act.

    Output relevance = output values; per layer
    R_i = sum_j a_i w_ji / (z_j + eps * s_j) * R_j with z_j the pre-activation (bias included) and
    s_j = +1 where z_j >= 0, -1 elsewhere (DeepExplain's sign convention); for a non-ReLU act the
    stabilised ratio is act(z_j) / (z_j + eps s_j) instead of the ReLU's implicit a_j = z_j.
    """
    acts, pres = [x], []
    for w, b in weights:
        z = acts[-1] @ w.T + b
        pres.append(z)
        acts.append(act(z))
    grad = np.ones_like(acts[-1])  # d sum(out) / d out
    for (w, _), z, a in zip(reversed(weights), reversed(pres), reversed(acts[1:])):
        s = np.where(z >= 0, 1.0, -1.0)
        grad = (grad * a / (z + eps * s)) @ w  # relevance per unit of the layer below / its value
    return grad * x


# ----------------------------------------------------------------------------------------------
# gradient methods
# ----------------------------------------------------------------------------------------------


def test_gradxinput_matches_finite_differences() -> None:
    net = tiny_convnet()
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 2, 6, 6)))
    raw = raw_attributions(net, x, methods=("gradxinput", "saliency"))
    fd = torch.zeros_like(x)
    h = 1e-6
    with torch.no_grad():
        for idx in np.ndindex(*x.shape):
            xp, xm = x.clone(), x.clone()
            xp[idx] += h
            xm[idx] -= h
            fd[idx] = (net(xp).sum() - net(xm).sum()) / (2 * h)
    assert fd.abs().max() > 1e-3  # the check is not vacuous
    torch.testing.assert_close(raw["gradxinput"], fd * x, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(raw["saliency"], fd.abs(), atol=1e-8, rtol=1e-6)
    maps = attribution_maps(net, x, methods=("gradxinput",))
    torch.testing.assert_close(maps["gradxinput"], (fd * x).mean(dim=1), atol=1e-8, rtol=1e-6)


def test_saliency_nonnegative_and_channel_mean_keeps_sign() -> None:
    net = tiny_convnet(3)
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(3, 2, 6, 6)))
    raw = raw_attributions(net, x)
    maps = attribution_maps(net, x)
    assert list(maps) == list(METHODS)
    assert (raw["saliency"] >= 0).all() and raw["saliency"].max() > 0
    assert (maps["saliency"] >= 0).all()
    for m in METHODS:
        assert maps[m].shape == (3, 6, 6)
        torch.testing.assert_close(maps[m], raw[m].mean(dim=1))
    # signed methods keep negative evidence (no absolute value sneaks in)
    assert maps["gradxinput"].min() < 0 < maps["gradxinput"].max()
    assert maps["elrp"].min() < 0 < maps["elrp"].max()


def test_channels_last_model_and_input_give_same_maps() -> None:
    net = tiny_convnet(4)
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(2, 2, 6, 6)))
    ref = attribution_maps(net, x, epsilon=0.1)
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    got = attribution_maps(net_cl, x.contiguous(memory_format=torch.channels_last), epsilon=0.1)
    for m in METHODS:
        torch.testing.assert_close(got[m], ref[m], rtol=1e-10, atol=1e-12)


def test_unknown_method_and_training_mode_rejected() -> None:
    net = tiny_convnet()
    x = torch.zeros(1, 2, 6, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribution_maps(net, x, methods=("deeplift",))
    with pytest.raises(ValueError, match="eval mode"):
        attribution_maps(net.train(), x)


# ----------------------------------------------------------------------------------------------
# epsilon-LRP
# ----------------------------------------------------------------------------------------------


def test_elrp_matches_explicit_epsilon_rule_and_not_gradxinput() -> None:
    weights = mlp_weights(0, (12, 9, 7, 4))
    x = np.random.default_rng(5).normal(size=(4, 1, 3, 4))
    eps = 0.5  # large, so epsilon-LRP differs measurably from gradient * input
    expected = numpy_epsilon_rule(weights, x.reshape(4, -1), eps).reshape(x.shape)
    raw = raw_attributions(torch_mlp(weights), torch.from_numpy(x), epsilon=eps)
    np.testing.assert_allclose(raw["elrp"].numpy(), expected, rtol=1e-10, atol=1e-12)
    gxi = raw["gradxinput"].numpy()
    assert np.abs(gxi - expected).max() > 0.1 * np.abs(expected).max()


def test_elrp_other_activation_follows_deepexplain_ratio() -> None:
    weights = mlp_weights(1, (6, 5, 3))
    x = np.random.default_rng(6).normal(size=(3, 1, 2, 3))
    eps = 0.3
    expected = numpy_epsilon_rule(weights, x.reshape(3, -1), eps, act=np.tanh).reshape(x.shape)
    raw = raw_attributions(torch_mlp(weights, nn.Tanh), torch.from_numpy(x), epsilon=eps)
    np.testing.assert_allclose(raw["elrp"].numpy(), expected, rtol=1e-10, atol=1e-12)


class _FunctionalReLUNet(nn.Module):
    """Same MLP as torch_mlp but with functional / tensor-method / in-place ReLUs."""

    def __init__(self, seq: nn.Sequential) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = seq[1], seq[3], seq[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.l1(x.flatten(1)))
        x = torch.relu(self.l2(x))
        x = self.l3(x)
        x.relu_()
        return x


def test_elrp_covers_functional_and_inplace_relu() -> None:
    weights = mlp_weights(2, (12, 9, 7, 4))
    seq = torch_mlp(weights)
    x = torch.from_numpy(np.random.default_rng(7).normal(size=(4, 1, 3, 4)))
    ref = raw_attributions(seq, x, epsilon=0.5)["elrp"]
    got = raw_attributions(_FunctionalReLUNet(seq).eval(), x, epsilon=0.5)["elrp"]
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)


def test_elrp_conserves_relevance_with_zero_bias_and_tiny_eps() -> None:
    weights = mlp_weights(3, (12, 16, 16, 12), zero_bias=True)
    x = torch.from_numpy(np.random.default_rng(8).normal(size=(5, 1, 3, 4)))
    net = torch_mlp(weights)
    with torch.no_grad():
        out_sum = net(x).sum(dim=1)
    assert (out_sum > 0).all()
    tiny = raw_attributions(net, x, methods=("elrp",), epsilon=1e-9)["elrp"].flatten(1).sum(1)
    torch.testing.assert_close(tiny, out_sum, rtol=1e-6, atol=0)
    # a large epsilon absorbs relevance: the sum falls clearly below the output
    big = raw_attributions(net, x, methods=("elrp",), epsilon=1.0)["elrp"].flatten(1).sum(1)
    assert (big < 0.95 * out_sum).all()


# ----------------------------------------------------------------------------------------------
# the real architecture (random weights, small inputs)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    torch.manual_seed(0)
    enc = TaskonomyEncoder(normalize_outputs=False)
    calibrate_batchnorm(enc, smooth_images(4, 128, seed=100))
    return enc


def test_model_unchanged_and_gradient_rule_matches_autograd(encoder: nn.Module) -> None:
    enc = encoder
    x = smooth_images(2, 64, seed=3)

    def native_grad() -> torch.Tensor:
        xx = x.clone().requires_grad_(True)
        return torch.autograd.grad(enc(xx).sum(), xx)[0]

    modules_before = [(n, type(m), id(m)) for n, m in enc.named_modules()]
    state_before = {k: v.clone() for k, v in enc.state_dict().items()}
    with torch.no_grad():
        out_before = enc(x)
    grad_before = native_grad()

    maps = raw_attributions(enc, x)
    # saliency / gradient*input come from the ordinary gradient through the rule nodes
    torch.testing.assert_close(maps["saliency"], grad_before.abs(), rtol=0, atol=0)
    torch.testing.assert_close(maps["gradxinput"], grad_before * x, rtol=0, atol=0)
    with epsilon_lrp_rules(0.1, enc):
        inside = native_grad()
    assert (inside - grad_before).abs().max() > 1e-3 * grad_before.abs().max()

    assert [(n, type(m), id(m)) for n, m in enc.named_modules()] == modules_before
    assert all(m.inplace for m in enc.modules() if isinstance(m, nn.ReLU))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, state_before[k]), k
    with torch.no_grad():
        assert torch.equal(enc(x), out_before)
    assert torch.equal(native_grad(), grad_before)
    assert all(not p.requires_grad for p in enc.parameters())


@pytest.fixture(scope="module")
def encoder_maps(encoder: nn.Module) -> dict[str, torch.Tensor]:
    return attribution_maps(encoder, smooth_images(2, 128, seed=7))


def test_encoder_activations_not_degenerate(encoder: nn.Module) -> None:
    with torch.no_grad():
        out = encoder(smooth_images(2, 64, seed=7))
    frac = (out > 0).float().mean().item()
    assert 0.1 < frac < 0.9


def test_float16_storage_agrees_with_float32(encoder_maps: dict[str, torch.Tensor]) -> None:
    for m, maps in encoder_maps.items():
        assert maps.dtype == torch.float32 and maps.abs().max() > 0
        stored, scale = to_float16(maps)
        assert stored.dtype == np.float16 and np.isfinite(stored).all()
        cos = per_image_cosine(stored, maps)
        assert (cos >= 0.999).all(), (m, cos)
        restored = stored.astype(np.float32) * scale[:, None, None]
        np.testing.assert_allclose(restored, maps.numpy(), atol=1e-3 * float(maps.abs().max()))


def test_shuffled_weights_score_clearly_lower(encoder: nn.Module,
                                              encoder_maps: dict[str, torch.Tensor]) -> None:
    x = smooth_images(2, 128, seed=7)
    other = shuffled_copy(encoder, seed=11)
    other_maps = attribution_maps(other, x)
    for m in METHODS:
        matrix, _ = cosine_similarity_matrix([encoder_maps[m], other_maps[m]])
        np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
        # saliency maps are nonnegative, so unrelated maps still have a positive cosine
        assert matrix[0, 1] < (0.9 if m == "saliency" else 0.3), (m, matrix)


def test_fold_batchnorm_gives_same_maps_and_leaves_model_alone(encoder: nn.Module) -> None:
    x = smooth_images(2, 64, seed=9)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in encoder.modules())
    state_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    folded = folded_for_attribution(encoder)
    assert n_bn == 54 and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in encoder.modules()) == n_bn
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, state_before[k]), k
    with torch.no_grad():
        ref = encoder(x)
        torch.testing.assert_close(folded(x), ref, atol=1e-4 * float(ref.abs().max()), rtol=1e-4)
    a, b = attribution_maps(encoder, x), attribution_maps(folded, x)
    for m in METHODS:
        assert (per_image_cosine(a[m], b[m]) > 0.999).all(), m
    with pytest.raises(ValueError, match="eval mode"):
        folded_for_attribution(tiny_convnet().train())


# ----------------------------------------------------------------------------------------------
# storage and cosine similarity
# ----------------------------------------------------------------------------------------------


def test_to_float16_survives_extreme_magnitudes() -> None:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 8, 8)).astype(np.float32) * np.array([1e-9, 1.0, 1e7],
                                                                       np.float32)[:, None, None]
    maps[2, 0, 0] = 0.0
    stored, scale = to_float16(maps)
    assert np.isfinite(stored).all() and np.abs(stored).max() == 1.0
    np.testing.assert_allclose(per_image_cosine(stored, maps), 1.0, atol=1e-6)
    restored = stored.astype(np.float32) * scale[:, None, None]
    for r, m in zip(restored, maps):
        np.testing.assert_allclose(r, m, rtol=1e-3, atol=1e-3 * float(np.abs(m).max()))
    zero_stored, zero_scale = to_float16(np.zeros((1, 4, 4)))
    assert (zero_stored == 0).all() and zero_scale[0] == 1.0


def test_per_image_cosine_properties() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 6, 5, 5))
    np.testing.assert_allclose(per_image_cosine(a, a), 1.0, atol=1e-12)
    np.testing.assert_array_equal(per_image_cosine(a, b), per_image_cosine(b, a))
    np.testing.assert_allclose(per_image_cosine(a, -a), -1.0, atol=1e-12)
    np.testing.assert_allclose(per_image_cosine(a, 3.0 * a * np.arange(1, 7)[:, None, None]), 1.0,
                               atol=1e-12)
    direct = [np.dot(u.ravel(), v.ravel()) / np.linalg.norm(u) / np.linalg.norm(v)
              for u, v in zip(a, b)]
    np.testing.assert_allclose(per_image_cosine(torch.from_numpy(a), b), direct, rtol=1e-12)
    a[0] = 0
    assert np.isnan(per_image_cosine(a, b)[0]) and np.isfinite(per_image_cosine(a, b)[1:]).all()
    with pytest.raises(ValueError, match="shape"):
        per_image_cosine(a, b[:3])


def test_cosine_similarity_matrix_streams_chunks_from_hdf5(tmp_path) -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=(7, 6, 6))
    maps = [base + s * rng.normal(size=base.shape) for s in (0.0, 0.5, 2.0, 10.0)]
    matrix, per_image = cosine_similarity_matrix(maps, chunk_size=7)
    assert matrix.shape == (4, 4) and per_image.shape == (4, 4, 7)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)
    np.testing.assert_array_equal(per_image, per_image.transpose(1, 0, 2))
    for i in range(4):
        for j in range(4):
            np.testing.assert_allclose(per_image[i, j], per_image_cosine(maps[i], maps[j]),
                                       rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matrix, per_image.mean(axis=2))
    # more noise -> less similar to the noise-free model
    assert matrix[0, 1] > matrix[0, 2] > matrix[0, 3]

    path = tmp_path / "maps.h5"
    with h5py.File(path, "w") as f:
        for i, mp in enumerate(maps):
            f.create_dataset(f"m{i}", data=mp.astype(np.float16), chunks=(1, 6, 6))
    with h5py.File(path, "r") as f:
        streamed, streamed_per_image = cosine_similarity_matrix([f[f"m{i}"] for i in range(4)],
                                                                chunk_size=3)
    np.testing.assert_allclose(streamed, matrix, atol=1e-3)
    assert streamed_per_image.shape == (4, 4, 7)
    with pytest.raises(ValueError, match="shape"):
        cosine_similarity_matrix([maps[0], maps[1][:5]])
