"""Task2Vec: Fisher against a sample-by-sample reference, closed forms, modes, distances, selection."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tasksim.task2vec import (
    Probe,
    asymmetric_distance,
    diagonal_fisher,
    distance_matrix,
    embedding,
    extract_features,
    fit_head,
    sample_targets,
    select_experts,
    task_distance,
    task_embedding,
)


def tiny_net(n_out: int = 3, seed: int = 0) -> nn.Sequential:
    """Conv + BN (non-trivial running statistics) + dropout + linear, in float64."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, n_out))
    bn = net[1]
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(4) * 0.3)
        bn.running_var.copy_(torch.rand(4) + 0.5)
        bn.weight.copy_(torch.rand(4) + 0.5)
        bn.bias.copy_(torch.randn(4) * 0.1)
    return net.double()


def loop_fisher(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, kind: str,
                names: list[str], s2: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Mean squared per-sample gradient, one sample at a time with plain autograd."""
    params = dict(model.named_parameters())
    acc = {k: torch.zeros_like(params[k]) for k in names}
    count = 0
    for s in range(targets.shape[0]):
        for i in range(x.shape[0]):
            out = model(x[i:i + 1])[0]
            if kind == "class":
                loss = -torch.log_softmax(out, 0)[targets[s, i]]
            else:
                loss = ((targets[s, i] - out) ** 2 / (2 * s2)).sum()
            grads = torch.autograd.grad(loss, [params[k] for k in names])
            for k, g in zip(names, grads):
                acc[k] += g ** 2
            count += 1
    return {k: v / count for k, v in acc.items()}


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(7, 3, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("params", [None, ["0", "1.weight"]])
def test_class_fisher_equals_sample_by_sample_autograd(images, params):
    net = tiny_net()
    net.train()  # the function must switch to eval itself
    fisher = diagonal_fisher(net, images, "class", n_samples=2, params=params, batch_size=3, seed=5)
    names = ([n for n, _ in net.named_parameters()] if params is None
             else ["0.weight", "0.bias", "1.weight"])
    assert list(fisher) == names
    net.eval()
    with torch.no_grad():
        y = sample_targets(net(images), "class", 2, seed=5)
    ref = loop_fisher(net, images, y, "class", names)
    for k in names:
        assert fisher[k].shape == ref[k].shape
        torch.testing.assert_close(fisher[k], ref[k], rtol=1e-5, atol=1e-12)
        assert (fisher[k] > 0).any()


def test_regression_fisher_equals_sample_by_sample_autograd(images):
    net = tiny_net(n_out=2)
    s2 = torch.tensor([0.5, 2.0], dtype=torch.float64)
    fisher = diagonal_fisher(net, images, "regression", n_samples=3, batch_size=4, seed=2,
                             noise_variance=s2)
    net.eval()
    with torch.no_grad():
        y = sample_targets(net(images), "regression", 3, seed=2, noise_variance=s2)
    names = [n for n, _ in net.named_parameters()]
    ref = loop_fisher(net, images, y, "regression", names, s2)
    for k in names:
        torch.testing.assert_close(fisher[k], ref[k], rtol=1e-5, atol=1e-12)


def test_fisher_depends_on_the_seed_only_through_the_draw(images):
    net = tiny_net()
    a = diagonal_fisher(net, images, "class", seed=3)
    b = diagonal_fisher(net, images, "class", seed=3, batch_size=2)
    c = diagonal_fisher(net, images, "class", seed=4)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-10, atol=0)
    assert any(not torch.allclose(a[k], c[k]) for k in a)


def test_linear_gaussian_fisher_is_mean_x_squared_over_sigma2():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 4, generator=g, dtype=torch.float64) * torch.tensor([0.5, 1.0, 2.0, 3.0],
                                                                             dtype=torch.float64)
    lin = nn.Linear(4, 1, bias=False).double()
    sigma2 = 0.7
    expected = (x ** 2).mean(0) / sigma2
    exact = diagonal_fisher(lin, x, "regression", noise_variance=sigma2, closed_form=True,
                            batch_size=128)
    torch.testing.assert_close(exact["weight"][0], expected, rtol=1e-10, atol=0)
    mc = diagonal_fisher(lin, x, "regression", noise_variance=sigma2, n_samples=40, batch_size=500)
    rel = (mc["weight"][0] - expected).abs() / expected
    assert (rel < 0.1).all(), rel


def test_class_closed_form_is_the_limit_of_monte_carlo(images):
    net = tiny_net()
    exact = diagonal_fisher(net, images, "class", closed_form=True, batch_size=3)
    mc = diagonal_fisher(net, images, "class", n_samples=400, batch_size=7, seed=1)
    for k in exact:
        num = (mc[k] - exact[k]).norm() / exact[k].norm()
        assert num < 0.15, (k, float(num))


def test_head_noise_variance_is_used_and_estimated():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(400, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 * torch.randn(400, generator=g)
    head = fit_head(x, y, "regression", epochs=300, lr=0.05, seed=0, weight_decay=0.0)
    assert head.noise_variance.shape == (1,)
    assert abs(float(head.noise_variance[0]) - 0.09) < 0.02
    implicit = diagonal_fisher(head, x, "regression", closed_form=True)
    explicit = diagonal_fisher(head, x, "regression", closed_form=True,
                               noise_variance=float(head.noise_variance[0]))
    for k in implicit:
        torch.testing.assert_close(implicit[k], explicit[k])
    doubled = diagonal_fisher(head, x, "regression", closed_form=True,
                              noise_variance=2 * float(head.noise_variance[0]))
    for k in implicit:
        torch.testing.assert_close(doubled[k] * 2, implicit[k])


class _ModeSpy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.bn.training)
        return self.fc(self.bn(x))


def test_batchnorm_in_eval_during_fisher_and_modes_restored():
    spy = _ModeSpy()
    spy.train()
    spy.fc.eval()  # mixed modes must come back as they were
    before = {name: m.training for name, m in spy.named_modules()}
    stats = spy.bn.running_mean.clone(), spy.bn.running_var.clone()
    x = torch.randn(10, 4)
    diagonal_fisher(spy, x, "class", batch_size=4)
    assert spy.seen and not any(spy.seen)
    assert {name: m.training for name, m in spy.named_modules()} == before
    assert torch.equal(spy.bn.running_mean, stats[0]) and torch.equal(spy.bn.running_var, stats[1])


def test_modes_restored_when_the_fisher_fails():
    net = tiny_net()
    net.train()
    with pytest.raises(ValueError, match="noise_variance"):
        diagonal_fisher(net, torch.randn(3, 3, 5, 5, dtype=torch.float64), "regression")
    assert all(m.training for m in net.modules())


def test_embedding_averages_per_filter_in_model_order():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 2, 2))
    model.add_module("fc", nn.Linear(2, 4))
    conv_w = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)
    fc_w = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0], [5.0, 7.0]])
    fisher = {"fc.bias": torch.tensor([9.0, 8.0, 7.0, 6.0]), "fc.weight": fc_w,
              "conv.bias": torch.tensor([0.5, 0.25]), "conv.weight": conv_w}
    expected = np.array([5.5, 17.5, 0.5, 0.25, 2.0, 2.0, 2.0, 6.0, 9.0, 8.0, 7.0, 6.0])
    np.testing.assert_allclose(embedding(fisher, model), expected)
    subset = embedding({"fc.weight": fc_w}, model)
    np.testing.assert_allclose(subset, [2.0, 2.0, 2.0, 6.0])
    with pytest.raises(ValueError, match="fc.weight"):
        embedding({"fc.weight": torch.ones(4, 3)}, model)
    with pytest.raises(ValueError, match="nope"):
        embedding({"nope": torch.ones(1)}, model)


def test_task_distance_properties():
    rng = np.random.default_rng(0)
    a, b = rng.random(20), rng.random(20)
    assert task_distance(a, a) == 0.0
    assert task_distance(a, b) == task_distance(b, a)
    for _ in range(20):
        x, y = rng.random(15) ** 3, rng.random(15) ** 3
        assert 0.0 <= task_distance(x, y) <= 1.0
    # a / (a + b) is unchanged when one coordinate of both is scaled alike; a plain cosine is not
    k = rng.random(20) * 100 + 0.01
    assert task_distance(a * k, b * k, eps=0) == pytest.approx(task_distance(a, b, eps=0), abs=1e-12)
    assert task_distance(a * k, b * k) == pytest.approx(task_distance(a, b), abs=1e-6)
    assert task_distance(a, 3 * a) == pytest.approx(0.0, abs=1e-12)
    # hand value: a=[1,0], b=[0,1] -> [1,0] vs [0,1]: orthogonal
    assert task_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    # a=[1,1], b=[1,3]: [1/2,1/4] vs [1/2,3/4]: 1 - (1/4+3/16)/(sqrt(5/16) sqrt(13/16))
    assert task_distance([1.0, 1.0], [1.0, 3.0], eps=0) == pytest.approx(1 - 7 / np.sqrt(65))


def test_distance_matrix_is_symmetric_with_zero_diagonal():
    rng = np.random.default_rng(1)
    embs = {t: rng.random(6) for t in ["x", "y", "z"]}
    m = distance_matrix(embs)
    assert isinstance(m, pd.DataFrame) and list(m.index) == list(m.columns) == ["x", "y", "z"]
    np.testing.assert_array_equal(np.diag(m.to_numpy()), 0.0)
    np.testing.assert_array_equal(m.to_numpy(), m.to_numpy().T)
    assert m.loc["x", "z"] == task_distance(embs["x"], embs["z"])
    with pytest.raises(ValueError, match="'w'"):
        distance_matrix({**embs, "w": rng.random(5)})
    with pytest.raises(ValueError, match="empty"):
        distance_matrix({})


def test_asymmetric_distance_definition_and_complexity_term():
    t = np.ones(4)
    e1, e2 = np.array([3.0, 1, 1, 1]), np.array([1.0, 3, 1, 1])
    t0 = e2.copy()
    assert asymmetric_distance(t, e1, t0, alpha=0.0) == task_distance(e1, t)
    assert asymmetric_distance(t, e1, t0, alpha=0.15) == pytest.approx(
        task_distance(e1, t) - 0.15 * task_distance(e1, t0))
    # equally far from the task, but e1 is farther from the trivial embedding: it ranks first
    assert task_distance(e1, t) == pytest.approx(task_distance(e2, t))
    ranking = select_experts(t, {"e2": e2, "e1": e1}, t0, alpha=0.15)
    assert list(ranking.index) == ["e1", "e2"]
    assert ranking.is_monotonic_increasing
    assert asymmetric_distance(e1, t, t0) != asymmetric_distance(t, e1, t0)
    with pytest.raises(ValueError, match="alpha"):
        asymmetric_distance(t, e1, t0, alpha=-1.0)


@pytest.fixture(scope="module")
def synthetic_tasks():
    """A fixed random conv extractor and three labellings of its images by different features."""
    torch.manual_seed(0)
    ext = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(400, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    f = extract_features(ext, x)
    f = (f - f.mean(0)) / f.std(0)

    def labels(idx: list[int], seed: int) -> torch.Tensor:
        w = torch.randn(4, 3, generator=torch.Generator().manual_seed(seed))
        return (f[:, idx] @ w).argmax(1)

    ys = {"A": labels([0, 1, 2, 3], 1), "B": labels([4, 5, 6, 7], 2), "C": labels([0, 2, 4, 6], 3)}
    first, second = torch.arange(0, 200), torch.arange(200, 400)

    def emb(task: str, rows: torch.Tensor, seed: int) -> np.ndarray:
        return task_embedding(ext, x[rows], ys[task][rows], "class", params=["3"], seed=seed,
                              epochs=200, lr=0.05)

    return {"A": emb("A", first, 1), "A_again": emb("A", second, 2), "B": emb("B", first, 1),
            "C": emb("C", first, 1)}


def test_same_task_other_seed_is_nearer_than_another_labelling(synthetic_tasks):
    e = synthetic_tasks
    assert e["A"].shape == (16,) and (e["A"] >= 0).all()
    same = task_distance(e["A"], e["A_again"])
    assert same < task_distance(e["A"], e["B"])
    assert same < task_distance(e["A"], e["C"])
    assert same < task_distance(e["A_again"], e["B"])


def test_select_experts_puts_the_matching_expert_first(synthetic_tasks):
    e = synthetic_tasks
    ranking = select_experts(e["A_again"], {"B": e["B"], "C": e["C"], "A": e["A"]}, trivial=e["C"])
    assert ranking.index[0] == "A"
    assert ranking.name == "asymmetric_distance"


def test_fit_head_is_deterministic_and_fits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    y = (x @ torch.randn(5, 3, generator=g)).argmax(1)  # linearly separable
    h1 = fit_head(x, y, "class", epochs=150, lr=0.05, seed=7)
    h2 = fit_head(x, y, "class", epochs=150, lr=0.05, seed=7)
    for (k, v), (_, w) in zip(h1.state_dict().items(), h2.state_dict().items()):
        assert torch.equal(v, w), k
    with torch.no_grad():
        acc = (h1(x).argmax(1) == y).float().mean()
    assert acc > 0.9
    assert not h1.training
    small = fit_head(x, y, "class", epochs=150, lr=0.05, seed=7, hidden=6)
    assert small(x).shape == (300, 3)


def test_probe_keeps_the_extractor_fixed():
    torch.manual_seed(0)
    ext = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    before = {k: v.clone() for k, v in ext.state_dict().items()}
    x = torch.randn(20, 3, 6, 6)
    y = torch.arange(20) % 2
    e = task_embedding(ext, x, y, "class", epochs=20)
    assert e.shape == (4,)  # 2 filters of conv weight + 2 biases
    for k, v in ext.state_dict().items():
        assert torch.equal(v, before[k])
    probe = Probe(ext, nn.Linear(2, 2))
    assert probe(x).shape == (20, 2)


def test_errors_name_the_problem(images):
    net = tiny_net()
    with pytest.raises(ValueError, match="'classification'"):
        diagonal_fisher(net, images, "classification")
    with pytest.raises(ValueError, match="empty"):
        diagonal_fisher(net, images[:0], "class")
    with pytest.raises(ValueError, match="'layer9'"):
        diagonal_fisher(net, images, "class", params=["layer9"])
    with pytest.raises(ValueError, match="n_samples"):
        diagonal_fisher(net, images, "class", n_samples=0)
    with pytest.raises(ValueError, match="2 values but the model has 3"):
        diagonal_fisher(net, images, "regression", noise_variance=[1.0, 2.0])
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="length 9 but features have 10"):
        fit_head(x, torch.zeros(9, dtype=torch.long), "class")
    with pytest.raises(ValueError, match="'ranking'"):
        fit_head(x, torch.zeros(10), "ranking")
    with pytest.raises(ValueError, match="empty"):
        fit_head(torch.zeros(0, 3), torch.zeros(0), "regression")
    with pytest.raises(ValueError, match="two classes"):
        fit_head(x, torch.zeros(10, dtype=torch.long), "class")
    with pytest.raises(ValueError, match="lengths: a 3, b 2"):
        task_distance(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="a is empty"):
        task_distance(np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match="empty"):
        select_experts(np.ones(3), {}, np.ones(3))
