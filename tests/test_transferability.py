"""Label-based transferability estimators: closed forms, invariances, bounds, applicability."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr

import tasksim.transferability as tr
from tasksim.transferability import (
    ESTIMATORS,
    NotApplicable,
    applicable,
    dense_to_cells,
    estimate,
    gbc,
    hscore,
    leep,
    linear_mse,
    logme,
    logme_evidence,
    mean_over_cells,
    nce,
    nleep,
    parc,
    shrinkage_hscore,
    transrate,
)


def _blobs(n: int, d: int, n_classes: int, separation: float, seed: int = 0):
    """Class-dependent Gaussian clusters in random directions."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_classes, d)) * separation
    return centres[labels] + rng.normal(size=(n, d)), labels


# ------------------------------------------------------------------ H-scores


def test_hscore_invariant_to_invertible_linear_map_and_bounded():
    f, y = _blobs(400, 6, 4, 1.0)
    a = np.random.default_rng(1).normal(size=(6, 6)) + 3 * np.eye(6)
    h = hscore(f, y)
    assert 0.5 < h < 3.0                                   # informative, below C - 1
    assert hscore(f @ a + 7.0, y) == pytest.approx(h, rel=1e-9)
    perfect, _ = _blobs(400, 6, 4, 100.0)
    assert hscore(perfect, y) <= 3.0 + 1e-9
    assert hscore(perfect, y) > 2.99                       # separated classes reach the bound


def test_hscore_saturates_and_shrinkage_does_not_when_n_below_d():
    rng = np.random.default_rng(2)
    f, y = rng.normal(size=(40, 120)), rng.integers(0, 3, 40)
    assert hscore(f, y) == pytest.approx(2.0, abs=1e-6)    # noise features: still C - 1
    s = shrinkage_hscore(f, y)
    assert np.isfinite(s) and 0.0 <= s < 2.0 - 0.5


def test_prepared_paths_equal_direct_ones():
    f, y = _blobs(120, 8, 3, 1.0, seed=3)
    y2 = (y + 1) % 3
    reg = np.random.default_rng(3).normal(size=(120, 2))
    for name, target in [("hscore", y), ("shrinkage_hscore", y), ("logme", y), ("logme", reg),
                         ("transrate", y), ("nleep", y), ("parc", y), ("parc", reg),
                         ("linear_mse", reg)]:
        spec = ESTIMATORS[name]
        prep = spec.prepare(f)
        for t in (target, y2 if target is y else target[:, ::-1]):   # one preparation, two targets
            assert spec.function(f, t, prepared=prep) == pytest.approx(
                spec.function(f, t), rel=1e-10, abs=1e-12), name


@pytest.mark.parametrize("n, d", [(90, 12), (30, 70)])
def test_factored_covariance_inverses_equal_the_explicit_ones(n, d):
    from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage

    rng = np.random.default_rng(7)
    f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0
    y = rng.integers(0, 4, n)
    assert tr.ledoit_wolf_shrinkage(f) == pytest.approx(ledoit_wolf_shrinkage(f), rel=1e-10)
    z = f - f.mean(axis=0)
    means = np.stack([z[y == c].mean(axis=0) for c in range(4)])
    between = (means * np.bincount(y)[:, None] / n).T @ means             # cov(E[f | y])
    cov = z.T @ z / n
    pinv = np.linalg.pinv(cov, rtol=max(n, d) * np.finfo(float).eps, hermitian=True)
    assert hscore(f, y) == pytest.approx(np.trace(pinv @ between), rel=1e-7)
    lw = LedoitWolf().fit(f)
    direct = (1 - lw.shrinkage_) * np.trace(np.linalg.inv(lw.covariance_) @ between)
    assert shrinkage_hscore(f, y) == pytest.approx(direct, rel=1e-8)
    prep = tr.prepare_shrinkage_hscore(f)
    np.testing.assert_allclose(prep.precision, np.linalg.inv(lw.covariance_), rtol=1e-7,
                               atol=1e-9 * np.abs(prep.precision).max())


def test_transrate_gram_route_equals_the_feature_space_formula():
    rng = np.random.default_rng(8)
    f, y = rng.normal(size=(40, 90)), rng.integers(0, 3, 40)            # N < D: Gram route
    z = f - f.mean(axis=0)
    z /= np.sqrt(np.mean(np.sum(z**2, axis=1)))

    def rate(x):
        return 0.5 * np.linalg.slogdet(np.eye(x.shape[1]) + x.T @ x / (x.shape[0] * 1e-4))[1]

    direct = rate(z) - sum((y == c).mean() * rate(z[y == c]) for c in range(3))
    assert tr.prepare_transrate(f).gram is not None
    assert transrate(f, y) == pytest.approx(direct, rel=1e-9)


def test_logme_columns_are_fitted_independently():
    rng = np.random.default_rng(9)
    f = rng.normal(size=(50, 8))
    # (a noise-free column would drive beta to the round-off level of its residual)
    ys = np.c_[f @ rng.normal(size=8) + 0.5 * rng.normal(size=50), rng.normal(size=50),
               f[:, 0] + 0.1 * rng.normal(size=50)]
    together = logme_evidence(f, ys)
    for k in range(3):
        alone = logme_evidence(f, ys[:, k])
        assert together.evidence[k] == pytest.approx(alone.evidence[0], rel=1e-12)
        assert together.alpha[k] == pytest.approx(alone.alpha[0], rel=1e-12)


# ------------------------------------------------------------------ LogME


def _direct_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    n = f.shape[0]
    cov = f @ f.T / alpha + np.eye(n) / beta
    return multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(y) / n


def test_logme_stays_finite_when_the_features_interpolate_the_target():
    """N < D with features of full row rank and a noise-free target: the noise precision runs to
    infinity, where the evidence has a finite limit (log N(y; 0, F F^T / alpha)); LogME must
    return that limit, not NaN."""
    rng = np.random.default_rng(7)
    f = rng.normal(size=(30, 90))
    y = f @ rng.normal(size=90)
    fit = logme_evidence(f, y, tol=0.0, max_iter=3000)  # iterate until beta overflows
    assert np.all(np.isfinite(fit.evidence)), fit
    n = f.shape[0]
    alpha_star = n / float(y @ np.linalg.solve(f @ f.T, y))  # the limit's maximiser over alpha
    limit = multivariate_normal(mean=np.zeros(n), cov=f @ f.T / alpha_star).logpdf(y) / n
    assert fit.evidence[0] == pytest.approx(limit, abs=1e-3)
    assert fit.evidence[0] == pytest.approx(_direct_log_evidence(f, y, fit.alpha[0], fit.beta[0]),
                                            rel=1e-6)


@pytest.mark.parametrize("n, d", [(80, 10), (25, 60)])
def test_logme_equals_gaussian_marginal_likelihood(n, d):
    rng = np.random.default_rng(n)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=(d, 2)) * 0.3 + rng.normal(size=(n, 2))
    fit = logme_evidence(f, y)
    for k in range(2):
        assert fit.evidence[k] == pytest.approx(
            _direct_log_evidence(f, y[:, k], fit.alpha[k], fit.beta[k]), rel=1e-8, abs=1e-10)
    assert logme(f, y) == pytest.approx(fit.evidence.mean())
    labels = rng.integers(0, 3, n)
    onehot = np.eye(3)[labels]
    fit_c = logme_evidence(f, onehot)
    direct = np.mean([_direct_log_evidence(f, onehot[:, c], fit_c.alpha[c], fit_c.beta[c])
                      for c in range(3)])
    assert logme(f, labels) == pytest.approx(direct, rel=1e-8)


def test_logme_prefers_informative_features():
    rng = np.random.default_rng(5)
    signal = rng.normal(size=(150, 5))
    y = signal @ rng.normal(size=5) + 0.1 * rng.normal(size=150)
    assert logme(signal, y) > logme(rng.normal(size=(150, 5)), y) + 0.5


# ------------------------------------------------------------------ LEEP, NCE, N-LEEP


def test_leep_zero_when_prediction_determines_label_and_log_c_when_independent():
    rng = np.random.default_rng(6)
    z = rng.integers(0, 6, 300)                            # 6 source classes
    theta = np.eye(6)[z]
    y = np.array([0, 0, 1, 2, 2, 1])[z]                    # deterministic map to 3 labels
    assert leep(theta, y) == pytest.approx(0.0, abs=1e-12)
    y_ind = rng.integers(0, 4, 4000)
    theta_ind = np.eye(6)[rng.integers(0, 6, 4000)]
    assert leep(theta_ind, y_ind) == pytest.approx(np.log(1 / 4), abs=0.02)
    # soft predictions are never better than the deterministic ones
    soft = 0.7 * theta + 0.3 / 6
    assert leep(soft, y) < 0


def test_nce_matches_hand_computed_conditional_entropy():
    z = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1])
    # H(Y|Z) = P(z=0) H(2/3, 1/3) + P(z=1) * 0
    expected = -(0.5 * -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)))
    assert nce(z, y) == pytest.approx(expected, rel=1e-12)
    assert nce(z, z) == pytest.approx(0.0, abs=1e-15)


def test_nleep_scores_informative_features_above_noise():
    f, y = _blobs(300, 10, 3, 3.0, seed=7)
    noise = np.random.default_rng(7).normal(size=f.shape)
    good, bad = nleep(f, y, seed=0), nleep(noise, y, seed=0)
    assert good > bad + 0.3
    assert nleep(f, y, seed=0) == good                     # seeded
    assert bad <= 0.0 and good <= 0.0


# ------------------------------------------------------------------ TransRate, GBC


def test_transrate_scores_informative_features_above_noise_and_ignores_scale():
    f, y = _blobs(300, 10, 3, 3.0, seed=8)
    noise = np.random.default_rng(8).normal(size=f.shape)
    assert transrate(f, y) > transrate(noise, y) + 0.5
    assert transrate(5.0 * f + 1.0, y) == pytest.approx(transrate(f, y), rel=1e-9)


def test_gbc_limits():
    f, y = _blobs(300, 5, 4, 50.0, seed=9)
    assert gbc(f, y) == pytest.approx(0.0, abs=1e-6)
    base = np.random.default_rng(9).normal(size=(50, 5))
    same = np.tile(base, (4, 1))                           # every class: the same 50 points
    labels = np.repeat(np.arange(4), 50)
    assert gbc(same, labels) == pytest.approx(-4 * 3, abs=1e-9)
    near = np.random.default_rng(10).normal(size=(4000, 3))
    assert gbc(near, np.arange(4000) % 4) == pytest.approx(-12, rel=0.01)


# ------------------------------------------------------------------ linear MSE, PARC


def test_linear_mse_equals_direct_ridge_solution():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(60, 4))
    y = x @ rng.normal(size=(4, 2)) + 0.5 + 0.2 * rng.normal(size=(60, 2))
    ridge = 0.7
    train, test = tr.train_test_indices(60, 0.25, seed=3)
    assert set(train) | set(test) == set(range(60)) and not set(train) & set(test)
    assert len(test) == 15
    aug = np.block([[x[train], np.ones((len(train), 1))],
                    [np.sqrt(ridge) * np.eye(4), np.zeros((4, 1))]])
    rhs = np.vstack([y[train], np.zeros((4, 2))])
    coef = np.linalg.lstsq(aug, rhs, rcond=None)[0]
    pred = np.hstack([x[test], np.ones((15, 1))]) @ coef
    expected = -np.mean((pred - y[test]) ** 2)
    assert linear_mse(x, y, test_fraction=0.25, ridge=ridge, seed=3) == pytest.approx(expected, rel=1e-10)
    # the dual form (D > N) gives the same ridge solution
    wide = rng.normal(size=(20, 50))
    t = rng.normal(size=20)
    w, b = tr.ridge_fit(wide, t, 2.0)
    aug = np.block([[wide, np.ones((20, 1))], [np.sqrt(2.0) * np.eye(50), np.zeros((50, 1))]])
    coef = np.linalg.lstsq(aug, np.concatenate([t, np.zeros(50)]), rcond=None)[0]
    np.testing.assert_allclose(np.append(w[:, 0], b), coef, rtol=1e-8, atol=1e-10)


def test_parc_equals_spearman_of_explicit_matrices():
    rng = np.random.default_rng(12)
    f = rng.normal(size=(30, 7))
    y = rng.integers(0, 3, 30)
    f[:, 0] += 3 * y
    feature_d = 1 - np.corrcoef(f)
    onehot = np.eye(3)[y]
    label_d = np.round(1 - np.corrcoef(onehot), 12)     # exact ties, as the ranks need
    iu = np.triu_indices(30, 1)
    expected = spearmanr(feature_d[iu], label_d[iu]).statistic
    assert parc(f, y) == pytest.approx(expected, rel=1e-10)
    assert parc(f, y, percent=True) == pytest.approx(100 * expected, rel=1e-10)
    targets = rng.normal(size=(30, 2))
    reg_d = np.linalg.norm(targets[:, None] - targets[None], axis=-1)
    assert parc(f, targets) == pytest.approx(spearmanr(feature_d[iu], reg_d[iu]).statistic, rel=1e-10)


# ------------------------------------------------------------------ the table, applicability


def test_declarations_and_not_applicable():
    assert set(ESTIMATORS) == {"hscore", "shrinkage_hscore", "logme", "leep", "nce", "nleep",
                               "transrate", "gbc", "linear_mse", "parc"}
    assert all(s.higher_is_better for s in ESTIMATORS.values())
    assert ESTIMATORS["leep"].input == "source_probabilities"
    assert ESTIMATORS["nce"].input == "source_predictions"
    assert applicable("logme", "regression") and applicable("logme", "class")
    assert not applicable("leep", "regression") and not applicable("linear_mse", "class")
    rng = np.random.default_rng(13)
    f, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    reg = rng.normal(size=40)
    for name, spec in ESTIMATORS.items():
        for kind, target in (("class", y), ("regression", reg)):
            if spec.input == "features" and not applicable(name, kind):
                with pytest.raises(NotApplicable, match=f"{name} is not applicable to {kind}"):
                    spec.function(f, target)
                assert isinstance(estimate(name, f, target), NotApplicable)
    assert isinstance(estimate("leep", np.eye(2)[y], reg), NotApplicable)
    assert isinstance(estimate("linear_mse", f, reg), float)
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        applicable("nope", "class")


# ------------------------------------------------------------------ dense targets


def test_dense_to_cells_on_hand_made_maps():
    classes = np.array([[[1, 1, 2, 2],
                         [1, 3, 2, 2],
                         [3, 3, 5, 5],
                         [3, 1, 5, 2]]] * 2)
    classes[1, 0, 0] = 3
    classes[1, 0, 1] = 3                                  # top-left of image 1: 3,3,1,3 -> 3
    cells = dense_to_cells(classes, 2)
    assert cells.shape == (4, 2) and cells.dtype.kind == "i"
    np.testing.assert_array_equal(cells[:, 0], [1, 2, 3, 5])
    np.testing.assert_array_equal(cells[:, 1], [3, 2, 3, 5])

    depth = np.zeros((3, 4, 4))
    depth[:, :2, :2] = np.array([1.0, 2.0, 6.0])[:, None, None]   # top-left cell means 1, 2, 6
    depth[:, 2:, 2:] = 4.0                                         # constant cell
    std = dense_to_cells(depth, 2)
    assert std.shape == (4, 3)
    v = np.array([1.0, 2.0, 6.0])
    np.testing.assert_allclose(std[0], (v - v.mean()) / v.std())
    np.testing.assert_array_equal(std[3], 0.0)
    q = dense_to_cells(depth, 2, levels=3)
    np.testing.assert_array_equal(q[0], [0, 1, 2])

    normals = np.stack([depth, -depth], axis=-1)
    assert dense_to_cells(normals, 2).shape == (4, 3, 2)
    assert dense_to_cells(normals, 2, levels=3).shape == (8, 3)
    with pytest.raises(ValueError, match="levels=4 applies to float maps"):
        dense_to_cells(classes, 2, levels=4)
    with pytest.raises(ValueError, match="grid must be"):
        dense_to_cells(depth, 5)


def test_dense_to_cells_averages_valid_pixels_and_fills_empty_cells():
    depth = np.arange(3 * 4 * 4, dtype=float).reshape(3, 4, 4)
    depth[0, 0, 0] = np.nan                     # one missing pixel: the cell's other three count
    depth[1, :2, 2:] = np.nan                   # cell 1 of image 1 has no valid pixel
    depth[:, 2:, :2] = np.nan                   # cell 2 is missing in every image
    raw = np.full((3, 4), np.nan)
    for i in range(3):
        for c, (r, q) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
            block = depth[i, r:r + 2, q:q + 2]
            raw[i, c] = np.nanmean(block) if np.isfinite(block).any() else np.nan
    raw[1, 1] = np.nanmean(raw[[0, 2], 1])      # filled with the cell's mean over the others
    raw[:, 2] = 0.0                             # missing everywhere: a constant cell
    want = (raw - raw.mean(axis=0)) / np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1)
    np.testing.assert_allclose(dense_to_cells(depth, 2), want.T)
    assert np.isfinite(dense_to_cells(depth, 2, levels=2)).all()
    depth[2, 3, 3] = np.inf
    with pytest.raises(ValueError, match="infinite values"):
        dense_to_cells(depth, 2)


def test_mean_over_cells_averages_informative_cells():
    rng = np.random.default_rng(14)
    f = rng.normal(size=(60, 5))
    maps = rng.normal(size=(60, 4, 4))
    maps[:, :2, :2] = 0.0                                  # one constant cell, skipped
    cells = dense_to_cells(maps, 2)
    expected = np.mean([logme(f, cells[k]) for k in (1, 2, 3)])
    assert mean_over_cells("logme", f, cells) == pytest.approx(expected, rel=1e-10)
    assert mean_over_cells(logme, f, cells) == pytest.approx(expected, rel=1e-10)
    q = dense_to_cells(maps, 2, levels=3)
    expected_q = np.mean([hscore(f, q[k]) for k in (1, 2, 3)])
    assert mean_over_cells("hscore", f, q) == pytest.approx(expected_q, rel=1e-10)
    # LogME runs all cells in one fixed point: the same as one call per cell, for class cells,
    # multi-channel cells (a constant channel dropped) and N < D
    wide = rng.normal(size=(60, 80))
    labels = dense_to_cells(rng.integers(0, 3, size=(60, 4, 4)), 2)
    assert mean_over_cells("logme", wide, labels) == pytest.approx(
        np.mean([logme(wide, c) for c in labels]), rel=1e-10)
    multi = rng.normal(size=(60, 4, 4, 3))
    multi[..., 2] = 1.0
    mc = dense_to_cells(multi, 2)
    assert mean_over_cells("logme", wide, mc) == pytest.approx(
        np.mean([logme(wide, c[:, :2]) for c in mc]), rel=1e-10)


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_are_named():
    rng = np.random.default_rng(15)
    f, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    with pytest.raises(ValueError, match="labels have 19 rows but the inputs have 20"):
        hscore(f, y[:19])
    with pytest.raises(ValueError, match="one class"):
        logme(f, np.zeros(20, dtype=int))
    bad = f.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values .* row 4, column 1"):
        transrate(bad, y)
    with pytest.raises(ValueError, match="row 0 sums to"):
        leep(np.full((20, 2), 0.4), y)
    with pytest.raises(ValueError, match="integer .* or float"):
        hscore(f, np.array(["a", "b"] * 10))
    with pytest.raises(ValueError, match="ridge must be positive"):
        linear_mse(f, rng.normal(size=20), ridge=0.0)
