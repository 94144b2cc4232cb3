"""CKA: kernels, biased / debiased HSIC, invariances, independent reference."""

from __future__ import annotations

import numpy as np
import pytest

from tasksim.similarity.cka import (
    center_gram,
    cka,
    cka_matrix,
    gram_linear,
    gram_rbf,
    gram_rbf_from_linear,
)


def _hsic_biased_ref(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h)) / (n - 1) ** 2


def _hsic_unbiased_ref(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Song et al. (2012), eq. 5, written out."""
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    term = (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * one @ kt @ lt @ one)
    return float(term) / (n * (n - 3))


def _cka_ref(k: np.ndarray, l: np.ndarray, hsic) -> float:  # noqa: E741
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.fixture
def reps() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 10))
    return [base @ rng.standard_normal((10, 30)) + 0.5 * rng.standard_normal((40, 30))
            for _ in range(3)]


@pytest.mark.parametrize("debiased", [False, True])
def test_matches_hsic_reference(reps: list[np.ndarray], debiased: bool) -> None:
    hsic = _hsic_unbiased_ref if debiased else _hsic_biased_ref
    for make in (gram_linear, gram_rbf):
        k, l = make(reps[0]), make(reps[1])  # noqa: E741
        assert cka(k, l, debiased) == pytest.approx(_cka_ref(k, l, hsic), abs=1e-12)


def test_debiased_centring_gives_unbiased_hsic(reps: list[np.ndarray]) -> None:
    k, l = gram_linear(reps[0]), gram_linear(reps[2])  # noqa: E741
    n = k.shape[0]
    inner = np.vdot(center_gram(k, True), center_gram(l, True)) / (n * (n - 3))
    assert inner == pytest.approx(_hsic_unbiased_ref(k, l), rel=1e-10)
    biased = np.vdot(center_gram(k), center_gram(l)) / (n - 1) ** 2
    assert biased == pytest.approx(_hsic_biased_ref(k, l), rel=1e-10)


def test_linear_cka_matches_feature_space_formula(reps: list[np.ndarray]) -> None:
    x, y = (r - r.mean(0) for r in reps[:2])
    ref = np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    assert cka(gram_linear(x), gram_linear(y)) == pytest.approx(ref, abs=1e-12)


def test_rbf_bandwidth_is_half_median_distance() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((15, 4))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    sigma = 0.5 * np.median(d[np.triu_indices(15, 1)])
    np.testing.assert_allclose(gram_rbf(x), np.exp(-d**2 / (2 * sigma**2)), atol=1e-12)
    # any offset of the features gives the same kernel from a linear Gram
    np.testing.assert_allclose(gram_rbf_from_linear(gram_linear(x + 10.0)), gram_rbf(x), atol=1e-9)
    np.testing.assert_allclose(gram_rbf(x, threshold=2.0), np.exp(-d**2 / (2 * (4 * sigma)**2)),
                               atol=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_invariances(reps: list[np.ndarray], debiased: bool) -> None:
    rng = np.random.default_rng(2)
    x, y = reps[0], reps[1]
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    base = cka(gram_linear(x), gram_linear(y), debiased)
    assert cka(gram_linear(x @ q * 4.2), gram_linear(y), debiased) == pytest.approx(base, abs=1e-12)
    assert cka(gram_linear(x + 3.0), gram_linear(y), debiased) == pytest.approx(base, abs=1e-12)
    # not invariant to a general invertible (anisotropic) map
    a = np.diag(np.linspace(0.1, 10, 30))
    assert abs(cka(gram_linear(x @ a), gram_linear(y), debiased) - base) > 1e-3


@pytest.mark.parametrize("debiased", [False, True])
def test_matrix_self_similarity_symmetry_and_pairs(reps: list[np.ndarray], debiased: bool) -> None:
    grams = [gram_linear(r) for r in reps] + [gram_rbf(reps[0])]
    m = cka_matrix(grams, debiased)
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 1.0)
    for i in range(4):
        assert cka(grams[i], grams[i], debiased) == pytest.approx(1.0, abs=1e-12)
        for j in range(4):
            if i != j:
                assert m[i, j] == pytest.approx(cka(grams[i], grams[j], debiased), abs=1e-12)


def test_independent_data_debiased_near_zero() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((200, 500)), rng.standard_normal((200, 500))
    biased = cka(gram_linear(x), gram_linear(y))
    unbiased = cka(gram_linear(x), gram_linear(y), debiased=True)
    assert biased > 0.5  # the known high-dimensional bias of the biased estimator
    assert abs(unbiased) < 0.05


def test_degenerate_inputs() -> None:
    with pytest.raises(ValueError, match="undefined"):
        cka(np.ones((5, 5)), gram_linear(np.random.default_rng(4).standard_normal((5, 3))))
    with pytest.raises(ValueError, match="N > 3"):
        center_gram(np.eye(3), debiased=True)
    with pytest.raises(ValueError, match="median"):
        gram_rbf(np.zeros((4, 2)))
