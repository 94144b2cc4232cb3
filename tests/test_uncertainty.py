"""Bootstrap over images and permutation over task labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from tasksim.taxonomy import uncertainty as unc

LABELS = [f"t{i}" for i in range(5)]


def _rdms(n_images: int, seed: int = 0, n_models: int = 5) -> np.ndarray:
    """RDMs of models sharing a latent image structure, each with its own noise level."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_images, 6))
    out = []
    for m in range(n_models):
        f = latent @ rng.standard_normal((6, 20)) + (0.5 + 0.5 * m) * rng.standard_normal((n_images, 20))
        out.append(squareform(pdist(f, metric="correlation")))
    return np.stack(out)


def _mean_offdiag(s: pd.DataFrame) -> float:
    v = s.to_numpy()
    return float(v[~np.eye(len(v), dtype=bool)].mean())


def test_rsa_similarity_is_spearman_of_upper_triangles():
    r = _rdms(30)
    s = unc.rsa_similarity(r)
    iu = np.triu_indices(30, 1)
    assert s[1, 3] == pytest.approx(spearmanr(r[1][iu], r[3][iu]).statistic)
    assert np.allclose(s, s.T) and np.allclose(np.diag(s), 1)


def test_duplicates_dropped_not_counted_as_zero_distances():
    r = _rdms(25, seed=1)
    full = unc.rsa_similarity(r)
    twice = np.concatenate([np.arange(25), np.arange(25)])
    # every distinct pair appears 4 times, copies of one image are dropped: exactly the full result
    assert np.allclose(unc.rsa_similarity(r, twice, "drop"), full)
    kept = unc.rsa_similarity(r, twice, "keep")  # 25 zero-distance pairs shared by all models
    assert not np.allclose(kept, full)
    assert kept[~np.eye(5, dtype=bool)].mean() > full[~np.eye(5, dtype=bool)].mean()
    with pytest.raises(ValueError):
        unc.rsa_similarity(r, twice, "whatever")


def test_attribution_similarity_resamples_images():
    rng = np.random.default_rng(2)
    c = rng.random((4, 4, 10))
    assert np.allclose(unc.attribution_similarity(c), c.mean(axis=2))
    idx = np.array([0, 0, 3])
    assert np.allclose(unc.attribution_similarity(c, idx), (2 * c[:, :, 0] + c[:, :, 3]) / 3)
    f = unc.attribution_similarity_fn(c, LABELS[:4])
    assert list(f(idx).columns) == LABELS[:4]


def test_bootstrap_indices_seeded_and_in_range():
    a = unc.bootstrap_indices(50, 7, seed=3)
    assert a.shape == (7, 50) and a.min() >= 0 and a.max() < 50
    assert np.array_equal(a, unc.bootstrap_indices(50, 7, seed=3))
    assert not np.array_equal(a, unc.bootstrap_indices(50, 7, seed=4))


def test_bootstrap_interval_contains_estimate_and_shrinks():
    widths = []
    for n in (30, 150):
        r = _rdms(n, seed=5)
        res = unc.bootstrap_score(unc.rsa_similarity_fn(r, LABELS), _mean_offdiag, n,
                                  n_boot=150, seed=0)
        assert res.low <= res.estimate <= res.high
        assert res.samples.shape == (150,) and res.level == 0.95
        assert res.estimate == pytest.approx(_mean_offdiag(pd.DataFrame(unc.rsa_similarity(r))))
        widths.append(res.high - res.low)
    assert widths[1] < 0.75 * widths[0]
    again = unc.bootstrap_score(unc.rsa_similarity_fn(r, LABELS), _mean_offdiag, 150, n_boot=150, seed=0)
    assert np.array_equal(again.samples, res.samples)  # seeded


def test_percentile_interval_levels():
    s = np.arange(1001, dtype=float)
    assert unc.percentile_interval(s, 0.95) == pytest.approx((25.0, 975.0))
    assert unc.percentile_interval(s, 0.5) == pytest.approx((250.0, 750.0))


def _truth(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n))
    names = [f"t{i}" for i in range(n)]
    return pd.DataFrame((x + x.T) / 2, index=names, columns=names)


def _agreement(truth: pd.DataFrame):
    iu = np.triu_indices(len(truth), 1)
    t = truth.to_numpy()[iu]
    return lambda s: float(np.corrcoef(s.to_numpy()[iu], t)[0, 1])


def test_permutation_p_small_for_truth():
    truth = _truth(12, 6)
    res = unc.permutation_test(truth, _agreement(truth), n_perm=199, seed=0)
    assert res.observed == pytest.approx(1.0)
    assert res.p_value <= 2 / 200
    assert res.null.shape == (199,) and res.null.max() <= 1.0 + 1e-12


def test_permutation_p_roughly_uniform_for_random():
    truth = _truth(8, 7)
    score = _agreement(truth)
    rng = np.random.default_rng(8)
    ps = np.array([unc.permutation_test(_truth(8, int(s)), score, n_perm=49, seed=rng).p_value
                   for s in rng.integers(0, 2**31, 200)])
    assert abs(ps.mean() - 0.5) < 0.07
    assert 0.03 < np.mean(ps <= 0.1) < 0.2
    assert np.all((ps >= 1 / 50) & (ps <= 1))
