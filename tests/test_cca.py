"""SVCCA / PWCCA: reference CCA, invariances, the N <= D guard, conv modes."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tasksim.similarity.cca import (
    canonical_correlations,
    conv_to_points,
    dimension_cap,
    reduce_representation,
    svcca,
    svcca_matrix,
)


def _cca_ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Textbook CCA: eigenvalues of Sxx^-1 Sxy Syy^-1 Syx (independent of the QR/SVD route)."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    sxx, syy, sxy = x.T @ x, y.T @ y, x.T @ y
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    ev = np.sort(np.linalg.eigvals(m).real)[::-1][: min(x.shape[1], y.shape[1])]
    return np.sqrt(np.clip(ev, 0, 1))


def _pair(rng: np.random.Generator, n: int = 400, d: int = 12, shared: int = 6):
    z = rng.standard_normal((n, shared))
    x = np.hstack([z, rng.standard_normal((n, d - shared))]) @ rng.standard_normal((d, d))
    y = np.hstack([z + 0.5 * rng.standard_normal((n, shared)), rng.standard_normal((n, d - shared))])
    return x, y @ rng.standard_normal((d, d))


def test_canonical_correlations_match_textbook_cca() -> None:
    x, y = _pair(np.random.default_rng(0))
    a = reduce_representation(x, keep=12, max_dim_ratio=1.0)
    b = reduce_representation(y, keep=12, max_dim_ratio=1.0)
    np.testing.assert_allclose(canonical_correlations(a, b), _cca_ref(x, y), atol=1e-8)
    value, info = svcca(x, y, keep=12, max_dim_ratio=1.0)
    assert value == pytest.approx(_cca_ref(x, y).mean(), abs=1e-8)
    assert not info["capped"]


def test_keep_99_percent_variance() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 20)) * np.r_[np.full(5, 10.0), np.full(15, 0.01)]
    r = reduce_representation(x, keep=0.99)
    assert r.kept_dims == 5 and not r.capped and r.explained_variance >= 0.99
    assert np.allclose(r.basis.T @ r.basis, np.eye(5))


@pytest.mark.parametrize("method", ["svcca", "pwcca"])
def test_self_similarity_and_symmetry(method: str) -> None:
    rng = np.random.default_rng(2)
    x, y = _pair(rng)
    reps = [x, y, rng.standard_normal((400, 8))]
    m, info = svcca_matrix(reps, method=method)
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 1.0)
    assert svcca(x, x, method=method)[0] == pytest.approx(1.0, abs=1e-10)
    assert svcca(y, x, method=method)[0] == pytest.approx(m[0, 1], abs=1e-12)
    assert m[0, 1] > m[0, 2]  # shared latent beats independent noise
    assert info["method"] == method and len(info["models"]) == 3


@pytest.mark.parametrize("method", ["svcca", "pwcca"])
def test_invariant_to_invertible_linear_map(method: str) -> None:
    rng = np.random.default_rng(3)
    x, y = _pair(rng, n=600)
    a = rng.standard_normal((12, 12)) + 4 * np.eye(12)  # invertible, not orthogonal
    # full rank kept (fixed k): the span, hence the CCA, is unchanged by any invertible map
    base = svcca(x, y, keep=12, method="svcca")[0]
    assert svcca(x @ a, y, keep=12, method="svcca")[0] == pytest.approx(base, abs=1e-9)
    # exactly low-rank data with comparable directions: the 99% rule keeps the same subspace
    z = rng.standard_normal((600, 5))
    lo_x = z @ rng.standard_normal((5, 12))
    lo_y = np.hstack([z[:, :3], rng.standard_normal((600, 2))]) @ rng.standard_normal((5, 12))
    base = svcca(lo_x, lo_y, method=method)[0]
    mapped, info = svcca(lo_x @ a, lo_y, method=method)
    assert [mi["kept_dims"] for mi in info["models"]] == [5, 5]
    if method == "svcca":
        assert mapped == pytest.approx(base, abs=1e-9)
        assert 0.6 < base < 0.65  # 3 of 5 directions shared exactly, 2 spuriously correlated
    else:  # PWCCA weights depend on the neurons, so only the correlations are invariant
        assert 0.0 < mapped < 1.0


def test_pwcca_weights_favour_directions_carrying_the_neurons() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    shared = rng.standard_normal(n)
    x = np.column_stack([shared * 10, rng.standard_normal(n) * 0.1])  # variance on the shared axis
    y = np.column_stack([shared + 0.1 * rng.standard_normal(n), rng.standard_normal((n, 2))])
    sv = svcca(x, y, keep=3)[0]
    pw = svcca(x, y, keep=3, method="pwcca")[0]  # weights from x, the one with fewer neurons
    assert sv < 0.55  # mean of ~1 and ~0
    assert pw > 0.95  # x's neurons live almost entirely on the shared canonical direction


def test_n_le_d_guard_caps_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((60, 200)), rng.standard_normal((60, 200))  # independent
    uncapped, info_u = svcca(x, y, max_dim_ratio=1.0)
    assert uncapped > 0.95  # the trap: N <= D makes CCA trivially ~1
    with caplog.at_level(logging.WARNING, logger="tasksim.similarity.cca"):
        capped, info = svcca(x, y)
    assert capped < 0.6
    assert info["capped"] and all(m["capped"] for m in info["models"])
    assert all(m["kept_dims"] == dimension_cap(60) == 6 for m in info["models"])
    assert "capped" in caplog.text
    assert not info_u["capped"] or all(m["kept_dims"] > 50 for m in info_u["models"])


def test_conv_modes() -> None:
    rng = np.random.default_rng(6)
    acts = rng.standard_normal((3, 4, 2, 5))
    pts = conv_to_points(acts, "spatial_points")
    assert pts.shape == (30, 4)
    np.testing.assert_array_equal(pts[1 * 10 + 1 * 5 + 3], acts[1, :, 1, 3])
    mean = conv_to_points(acts, "spatial_mean")
    np.testing.assert_allclose(mean, acts.mean(axis=(2, 3)))
    assert conv_to_points(acts, "flatten").shape == (3, 40)
    flat = rng.standard_normal((3, 7))
    assert conv_to_points(flat, "spatial_mean") is flat
    with pytest.raises(ValueError, match="conv mode"):
        conv_to_points(acts, "pixels")


def test_wide_representation_uses_gram_route() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 10)) @ rng.standard_normal((10, 1000))  # d > n, rank 10
    r = reduce_representation(x, keep=0.999999)
    assert r.kept_dims == 10 and r.n_neurons == 1000
    xc = x - x.mean(0)
    np.testing.assert_allclose(r.basis @ (r.basis.T @ xc), xc, atol=1e-8)  # spans the data


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="constant"):
        reduce_representation(np.ones((10, 3)))
    with pytest.raises(ValueError, match="data points"):
        svcca(np.zeros((10, 2)) + np.arange(10)[:, None], np.random.default_rng(0).standard_normal((9, 2)))
