"""Ranking measures (weighted tau, Rel@1), the popularity floor and the Mini-Taskonomy noise ceiling."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import weightedtau

from tasksim.minitaskonomy.ahp import affinity_frame
from tasksim.minitaskonomy.ceiling import (
    noise_ceiling,
    noise_ceiling_summary,
    read_losses,
    split_half_affinities,
    split_images,
)
from tasksim.taxonomy import scoring


def _frame(values, sources, targets) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(values, dtype=float), index=list(sources), columns=list(targets))


def _column(values, target="t"):
    """A one-target source x target frame over sources s0, s1, ..."""
    return _frame(np.asarray(values, dtype=float)[:, None], [f"s{i}" for i in range(len(values))], [target])


def _random_pair(seed: int, n_sources: int = 7, n_targets: int = 5):
    rng = np.random.default_rng(seed)
    names = [f"task{i}" for i in range(n_sources)]
    gt = _frame(rng.random((n_sources, n_targets)), names, names[:n_targets])
    method = _frame(gt.to_numpy() + rng.normal(0, 0.3, gt.shape), names, names[:n_targets])
    return method, gt


# ------------------------------------------------------------------------------- weighted tau


def test_weighted_tau_hand_computed_and_perfect():
    gt = _column([3.0, 2.0, 1.0])          # ground-truth ranks 0, 1, 2: weights 1, 1/2, 1/3
    method = _column([1.0, 3.0, 2.0])
    # pairs (0,1) and (0,2) discordant with weights 1 + 1/2 and 1 + 1/3, pair (1,2) concordant
    # with weight 1/2 + 1/3: (-3/2 - 4/3 + 5/6) / (3/2 + 4/3 + 5/6) = -6/11
    assert scoring.weighted_tau_per_target(method, gt)["t"] == pytest.approx(-6 / 11, abs=1e-12)
    # not scipy's default (ranking by both variables averaged), which gives -4/11 here
    assert weightedtau([3.0, 2.0, 1.0], [1.0, 3.0, 2.0]).statistic == pytest.approx(-4 / 11)
    assert scoring.weighted_tau_per_target(gt * 10 + 5, gt)["t"] == pytest.approx(1.0)
    assert scoring.weighted_tau_per_target(-gt, gt)["t"] == pytest.approx(-1.0)


def test_weighted_tau_weighs_the_top_of_the_groundtruth_ranking():
    rng = np.random.default_rng(4)
    g, m = rng.random(6), rng.random(6)
    rank = np.argsort(np.argsort(-g))                       # 0 = best by ground truth
    num = den = 0.0
    for i, j in itertools.combinations(range(6), 2):
        w = 1 / (rank[i] + 1) + 1 / (rank[j] + 1)
        num += w * np.sign(g[i] - g[j]) * np.sign(m[i] - m[j])
        den += w
    assert scoring.weighted_tau_per_target(_column(m), _column(g))["t"] == pytest.approx(num / den)
    # swapping the two best sources costs more than swapping the two worst
    g = np.arange(6.0)[::-1]
    top, bottom = g.copy(), g.copy()
    top[[0, 1]], bottom[[4, 5]] = g[[1, 0]], g[[5, 4]]
    tau = scoring.weighted_tau_per_target(_frame(np.c_[top, bottom], [f"s{i}" for i in range(6)], "ab"),
                                          _frame(np.c_[g, g], [f"s{i}" for i in range(6)], "ab"))
    assert tau["a"] < tau["b"] < 1.0


# ------------------------------------------------------------------------------------ Rel@1


def test_rel_at_1_known_answers_and_conventions():
    gt = _column([0.5, 0.2, 0.3])
    pick_s2 = _column([0.0, 1.0, 2.0])
    assert scoring.rel_at_1_per_target(pick_s2, gt)["t"] == pytest.approx(0.6)               # 0.3 / 0.5
    assert scoring.rel_at_1_per_target(pick_s2, gt, baseline="min")["t"] == pytest.approx(1 / 3)
    assert scoring.rel_at_1_per_target(gt, gt)["t"] == 1.0
    # ties in the method's top score go to the first source in order (s1 here: 0.2 / 0.5)
    assert scoring.rel_at_1_per_target(_column([0.0, 2.0, 2.0]), gt)["t"] == pytest.approx(0.4)
    # negative affinities: min-shifted ratio, and the plain ratio refuses them
    neg = _column([-1.0, -3.0, -2.0])
    assert scoring.rel_at_1_per_target(pick_s2, neg, baseline="min")["t"] == pytest.approx(0.5)
    assert scoring.rel_at_1_per_target(_column([0, 9, 0.0]), neg, baseline="min")["t"] == 0.0
    with pytest.raises(ValueError, match="baseline='min'"):
        scoring.rel_at_1_per_target(pick_s2, neg)
    with pytest.raises(ValueError, match="positive best"):
        scoring.rel_at_1_per_target(pick_s2, _column([0.0, 0.0, 0.0]))
    assert scoring.rel_at_1_per_target(pick_s2, _column([2.0, 2.0, 2.0]), baseline="min")["t"] == 1.0
    # a method that scores every source alike chooses nothing: not scored, not "the first source"
    assert np.isnan(scoring.rel_at_1_per_target(_column([0.5, 0.5, 0.5]), gt)["t"])
    assert np.isnan(scoring.rel_at_1_per_target(_column([0.5, 0.5, 0.5]), gt, baseline="min")["t"])
    with pytest.raises(ValueError, match="baseline must be"):
        scoring.rel_at_1_per_target(pick_s2, gt, baseline="max")


def test_own_entry_as_in_dds_per_target():
    method, gt = _random_pair(1)
    tasks = list(method.index)
    for own in (True, False):
        ours = scoring.spearman_per_target(method, gt, tasks, own_entry=own)
        dds = scoring.dds_per_target(method, gt, tasks, targets=list(gt.columns), own_entry=own)
        pd.testing.assert_series_equal(ours, dds, check_names=False)
    # the own entry is the method's best score: Rel@1 is 1 with it and depends on the others without it
    boosted = method.copy()
    for t in gt.columns:
        boosted.loc[t, t] = 100.0
        gt.loc[t, t] = 100.0
    assert (scoring.rel_at_1_per_target(boosted, gt, own_entry=True) == 1.0).all()
    without = scoring.rel_at_1_per_target(boosted, gt, own_entry=False)
    pd.testing.assert_series_equal(without, scoring.rel_at_1_per_target(method, gt, own_entry=False))
    # the own entry replaced by self__X with groundtruth_self="self"
    gt.loc["self"] = 0.0
    w_self = scoring.weighted_tau_per_target(boosted, gt, tasks, groundtruth_self="self")
    assert (w_self < 1).all() and not np.allclose(w_self, scoring.weighted_tau_per_target(boosted, gt, tasks))


# -------------------------------------------------------------------------------------- NaN


def test_nan_entries_are_missing_not_zero():
    method, gt = _random_pair(2)
    t0, t2 = gt.columns[0], gt.columns[2]
    best = gt[t0].idxmax()
    holed = method.copy()
    holed.loc[best, t0] = np.nan                         # the best source not applicable to t0
    holed[t2] = np.nan                                   # an estimator not applicable to target 2
    rest = [s for s in gt.index if s != best]
    for per_target in (scoring.spearman_per_target, scoring.weighted_tau_per_target,
                       scoring.rel_at_1_per_target):
        got = per_target(holed, gt)
        assert got[t0] == pytest.approx(per_target(method.loc[rest], gt.loc[rest], targets=[t0])[t0])
        assert got[t0] != pytest.approx(per_target(holed.fillna(0.0), gt)[t0])   # not read as 0
        assert np.isnan(got[t2])
        others = [t for t in gt.columns if t not in (t0, t2)]
        pd.testing.assert_series_equal(got[others], per_target(method, gt)[others])
    mean = scoring.weighted_tau_score(holed, gt)
    assert (mean.n_scored, mean.n_targets) == (4, 5)
    assert mean.value == pytest.approx(scoring.weighted_tau_per_target(holed, gt).drop(t2).mean())
    per = scoring.ranking_per_target(holed, gt)
    assert per.loc[t0, "n_sources"] == 6 and per.loc[t2, "n_sources"] == 0
    summary = scoring.ranking_summary(per)
    assert list(summary.index) == list(scoring.RANKING_MEASURES)
    assert (summary["n_scored"] == 4).all() and (summary["n_targets"] == 5).all()
    # a ground-truth NaN is missing too; a column left with one source is not scored
    gt2 = gt.copy()
    gt2.iloc[2:, 3] = np.nan
    gt2.iloc[0, 3] = np.nan
    assert np.isnan(scoring.rel_at_1_per_target(method, gt2)[gt.columns[3]])


# ------------------------------------------------------------------------------ popularity


def test_popularity_hand_computed():
    names = ["a", "b", "c"]
    gt = _frame([[9.0, 0.7, 0.2],       # rows = sources, columns = targets
                 [0.6, 9.0, 0.8],
                 [0.4, 0.3, 9.0]], names, names)
    pop = scoring.popularity_scores(gt)
    # target a: columns b and c; a ranks first (0) in b and last (1) in c, b is first in c
    # (its own column b is left out), c is last in b (its own column c is left out)
    assert pop["a"].to_dict() == {"a": 0.5, "b": 1.0, "c": 0.0}
    # own_entry=True: each column ranks its own source too
    pop_own = scoring.popularity_scores(gt, own_entry=True)
    assert pop_own.loc["b", "a"] == pytest.approx(1 - (0.0 + 0.5) / 2)


def test_popularity_is_leave_one_target_out():
    _, gt = _random_pair(3, n_sources=8, n_targets=6)
    pop = scoring.popularity_scores(gt)
    t = gt.columns[2]
    changed = gt.copy()
    changed[t] = np.random.default_rng(9).random(len(gt))
    pop2 = scoring.popularity_scores(changed)
    pd.testing.assert_series_equal(pop[t], pop2[t])                    # no information about t
    assert not np.allclose(pop.drop(columns=t), pop2.drop(columns=t))  # but the others use t
    holed = gt.copy()
    holed.iloc[0, 0] = np.nan
    assert np.isfinite(scoring.popularity_scores(holed).to_numpy()).all()
    assert scoring.popularity_scores(gt, sources=gt.index[:5]).shape == (5, 6)


@pytest.mark.shared
def test_popularity_floor_on_taskonomy(shared_taskonomy):
    from tasksim.taxonomy import groundtruth
    g = groundtruth.load_matrix(shared_taskonomy, "affinity", "base")
    tasks = list(scoring.DDS_TASKS)
    pop = scoring.popularity_scores(g, tasks, tasks)
    assert scoring.spearman_score(pop, g, tasks, own_entry=False).value == pytest.approx(0.47, abs=0.01)


# ------------------------------------------------------------------------------ noise ceiling


def _losses(noise: float, seed: int = 0, n_sources: int = 9, n_targets: int = 6, n_images: int = 200):
    """Per-image losses: a per-target quality of each source plus image difficulty plus noise."""
    rng = np.random.default_rng(seed)
    sources = [f"s{i}" for i in range(n_sources)]
    out = {}
    for k in range(n_targets):
        quality = rng.permutation(n_sources)[:, None] * 0.1
        difficulty = rng.gamma(2.0, 1.0, n_images)[None, :]
        out[f"s{k}"] = quality + difficulty + noise * rng.normal(size=(n_sources, n_images))
    return sources, out


def test_split_is_seeded_disjoint_and_complete():
    a, b = split_images(11, seed=3)
    assert len(a) == 5 and len(b) == 6 and not set(a) & set(b) and set(a) | set(b) == set(range(11))
    assert all((x == y).all() for x, y in zip(split_images(11, 3), (a, b)))
    assert not np.array_equal(split_images(11, 4)[0], a)
    sources, losses = _losses(1.0)
    h1, h2 = split_half_affinities(losses, sources, seed=3)
    a, b = split_images(200, 3)
    pd.testing.assert_frame_equal(h1, affinity_frame({t: lo[:, a] for t, lo in losses.items()}, sources))
    pd.testing.assert_frame_equal(h2, affinity_frame({t: lo[:, b] for t, lo in losses.items()}, sources))
    np.testing.assert_allclose(h1.sum(axis=0), 1.0)


def test_noise_ceiling_is_one_without_noise_and_lower_with_it():
    sources, exact = _losses(0.0)    # every image orders the sources the same way
    c = noise_ceiling(exact, sources)
    assert np.allclose(c[["spearman", "weighted_tau", "rel_at_1", "spearman_brown"]], 1.0)
    means = {}
    for noise in (0.5, 3.0, 1000.0):
        sources, noisy = _losses(noise)
        summary = noise_ceiling_summary(noise_ceiling(noisy, sources, n_splits=2, own_entry=False))
        means[noise] = summary["value"]
        assert (summary["n_scored"] == 6).all()
    assert 0.6 < means[0.5]["spearman"] < 1.0
    assert means[0.5]["spearman"] > means[3.0]["spearman"] > means[1000.0]["spearman"]
    assert abs(means[1000.0]["spearman"]) < 0.3          # pure noise: no agreement
    assert means[0.5]["weighted_tau"] > means[1000.0]["weighted_tau"]
    assert means[0.5]["rel_at_1"] > means[1000.0]["rel_at_1"]
    assert means[0.5]["spearman_brown"] > means[0.5]["spearman"]


def test_noise_ceiling_reads_the_pipeline_losses_file(tmp_path):
    sources, losses = _losses(1.0)
    path = tmp_path / "losses.npz"
    np.savez(path, sources=np.array(sources), **losses)   # as rule mt_affinity writes it
    got_sources, got = read_losses(path)
    assert got_sources == sources and set(got) == set(losses)
    c = noise_ceiling(got, got_sources, score_sources=sources[:5], targets=["s0", "s1"])
    assert list(c.index) == ["s0", "s1"]
    with pytest.raises(ValueError, match="must be"):
        split_half_affinities({"s0": losses["s0"][:3]}, sources)


def test_weighted_tau_rows_equals_scipy_row_by_row_with_ties():
    """The vectorised weighted tau of the permutation nulls is scipy's weightedtau, ties included."""
    from scipy.stats import weightedtau

    rng = np.random.default_rng(4)
    for k in (3, 7, 16):
        g = rng.integers(0, 4, size=k).astype(float)      # ties in the ground truth
        rows = rng.integers(0, 5, size=(40, k)).astype(float)  # ties in the scores
        rows[0] = rng.random(k)
        rank = scoring.ground_truth_ranks(g)
        fast = scoring.weighted_tau_rows(g, rows, rank)
        slow = [weightedtau(g, r, rank=rank).statistic for r in rows]
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    assert np.isnan(scoring.weighted_tau_rows(g, np.ones((1, k)), rank)[0])
