"""Scoring protocols: task sets, oracle, random baseline, DDS, tree agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from tasksim.tasks import PAPER_TASKS
from tasksim.taxonomy import scoring, trees

SHARED = Path(__file__).parents[2] / "shared" / "taskonomy"
TASKS = list(PAPER_TASKS)


def _shared_matrix(kind: str, variant: str) -> pd.DataFrame:
    if not (SHARED / "affinities" / "all_affinities.pkl").is_file():
        pytest.skip(f"Taskonomy mirror not found at {SHARED} (../shared/taskonomy beside the checkout)")
    from tasksim.taxonomy import groundtruth
    return groundtruth.load_matrix(SHARED, kind, variant)


def _random_groundtruth(rng: np.random.Generator) -> pd.DataFrame:
    """A source x target matrix shaped like all_affinities_16k (20 sources x 18 targets, + self)."""
    g = pd.DataFrame(rng.random((21, 18)), index=TASKS + ["self"], columns=scoring.ATTRIBUTION_TARGETS)
    return g


def _symmetric(rng: np.random.Generator, names=TASKS) -> pd.DataFrame:
    x = rng.standard_normal((len(names), len(names)))
    s = (x + x.T) / 2
    np.fill_diagonal(s, 10.0)
    return pd.DataFrame(s, index=names, columns=names)


def _column_copy(groundtruth: pd.DataFrame, names=TASKS) -> pd.DataFrame:
    """A 'method' whose column t is the ground-truth column t (random where t is not a target)."""
    s = pd.DataFrame(0.0, index=names, columns=names)
    for t in names:
        if t in groundtruth.columns:
            s[t] = groundtruth[t].reindex(names).fillna(0.0).to_numpy()
    return s


def test_task_sets_and_k_exactly_as_methods():
    assert len(scoring.ATTRIBUTION_TARGETS) == 18
    assert set(scoring.ATTRIBUTION_TARGETS) == set(PAPER_TASKS) - {"colorization", "inpainting"}
    assert len(scoring.ATTRIBUTION_SOURCES) == 20
    assert scoring.K_VALUES == tuple(range(1, 20))
    assert len(scoring.DDS_TASKS) == 17
    assert set(scoring.DDS_TASKS) == set(PAPER_TASKS) - {"colorization", "inpainting", "class_scene"}
    assert scoring.N_RELEVANT == 5
    assert scoring.random_precision_at_k() == pytest.approx(5 / 19)
    g = _random_groundtruth(np.random.default_rng(0))
    pr = scoring.precision_recall_at_k(_symmetric(np.random.default_rng(1)), g)
    assert list(pr.index) == list(range(1, 20))
    h = scoring.hits_at_k(_symmetric(np.random.default_rng(1)), g)
    assert h.shape == (18, 19) and (h.iloc[:, -1] == 5).all()  # K=19 retrieves all candidates


def test_top_sources_excludes_target_and_picks_best():
    g = _random_groundtruth(np.random.default_rng(2))
    g.loc["normal", "normal"] = 100.0  # own-encoder entry: never a relevant source
    g.loc["self", "normal"] = 200.0
    top = scoring.top_sources(g)
    assert set(top) == set(scoring.ATTRIBUTION_TARGETS)
    assert "normal" not in top["normal"] and "self" not in top["normal"]
    expected = g.loc[[s for s in TASKS if s != "normal"], "normal"].sort_values(ascending=False)
    assert top["normal"] == list(expected.index[:5])


def test_groundtruth_column_gives_oracle_precision():
    g = _random_groundtruth(np.random.default_rng(3))
    pr = scoring.precision_recall_at_k(_column_copy(g), g)
    oracle = scoring.oracle_precision_at_k(g)
    assert np.allclose(pr["precision"], oracle)
    k = np.arange(1, 20)
    assert np.allclose(oracle, np.minimum(1.0, 5 / k))
    assert np.allclose(pr["recall"], np.minimum(k, 5) / 5)


def test_random_matrices_average_to_baseline():
    rng = np.random.default_rng(4)
    g = _random_groundtruth(rng)
    curves = [scoring.precision_recall_at_k(_symmetric(rng), g)["precision"].to_numpy()
              for _ in range(150)]
    mean = np.mean(curves, axis=0)
    assert np.all(np.abs(mean - 5 / 19) < 0.035)
    assert abs(mean.mean() - 5 / 19) < 0.01


def test_dds_of_groundtruth_column_is_one_and_random_near_zero():
    rng = np.random.default_rng(5)
    g = pd.DataFrame(rng.random((21, 22)), index=TASKS + ["self"], columns=TASKS + ["x", "y"])
    assert scoring.dds_score(_column_copy(g), g) == pytest.approx(1.0)
    per = scoring.dds_per_target(_column_copy(g), g)
    assert list(per.index) == list(scoring.DDS_TASKS) and np.allclose(per, 1.0)
    # the 'self' variant swaps in self__X at the target's own position
    g2 = g.copy()
    for t in scoring.DDS_TASKS:
        g2.loc["self", t] = g.loc[t, t]
    assert scoring.dds_score(_column_copy(g), g2, groundtruth_self="self") == pytest.approx(1.0)
    g2.loc["self", scoring.DDS_TASKS] = -1.0  # self now ranks last instead of its true place
    assert scoring.dds_score(_column_copy(g), g2, groundtruth_self="self") < 1.0
    scores = [scoring.dds_score(_symmetric(rng), g) for _ in range(40)]
    assert abs(np.mean(scores)) < 0.1


def test_dds_uses_column_orientation():
    rng = np.random.default_rng(6)
    g = pd.DataFrame(rng.random((20, 20)), index=TASKS, columns=TASKS)
    # the transposed method (rows = ground-truth columns) is not the oracle
    assert scoring.dds_score(_column_copy(g).T, g) < 0.9


def test_adjusted_rand_index_properties():
    a = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    assert scoring.adjusted_rand_index(a, a) == pytest.approx(1.0)
    assert scoring.adjusted_rand_index(a, 5 - a) == pytest.approx(1.0)  # relabelled
    # hand value: Hubert-Arabie ARI of [0,0,1,1] vs [0,1,0,1] is -0.5
    assert scoring.adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    rng = np.random.default_rng(7)
    vals = [scoring.adjusted_rand_index(rng.integers(0, 4, 60), rng.integers(0, 4, 60)) for _ in range(200)]
    assert abs(np.mean(vals)) < 0.02


def test_tree_agreement_identical_and_different_trees():
    rng = np.random.default_rng(8)
    blocks = np.repeat(np.arange(4), 5)
    s = (blocks[:, None] == blocks[None, :]) * 0.8 + 0.05 * rng.standard_normal((20, 20))
    s = (s + s.T) / 2
    z = trees.cluster(s, method="average")
    same = scoring.tree_agreement(z, TASKS, z, TASKS)
    assert same == {"cophenetic_correlation": pytest.approx(1.0), "adjusted_rand": pytest.approx(1.0),
                    "n_common": 20.0}
    # leaf labels in another order and an extra task: agreement only over the common tasks
    perm = rng.permutation(20)
    z_p = trees.cluster(s[np.ix_(perm, perm)], method="average")
    assert scoring.tree_agreement(z, TASKS, z_p, [TASKS[i] for i in perm])["adjusted_rand"] == pytest.approx(1.0)
    other = _symmetric(rng).to_numpy()
    z_r = trees.cluster(other, method="average")
    diff = scoring.tree_agreement(z, TASKS, z_r, TASKS)
    assert diff["cophenetic_correlation"] < 0.6 and diff["adjusted_rand"] < 0.5


@pytest.mark.shared
def test_real_groundtruth_scores_itself_perfectly():
    a16 = _shared_matrix("affinity", "16k")
    pr = scoring.precision_recall_at_k(_column_copy(a16), a16)
    assert np.allclose(pr["precision"], np.minimum(1, 5 / np.arange(1, 20)))
    base = _shared_matrix("affinity", "base")
    assert scoring.dds_score(_column_copy(base), base) == pytest.approx(1.0)
    wins = _shared_matrix("wins_vs_pixels", "16k")
    assert scoring.dds_score(_column_copy(wins), wins) == pytest.approx(1.0)
    top = scoring.top_sources(a16)
    assert set(top["depth_zbuffer"]) & {"depth_euclidean", "reshading", "normal"}


def test_dds_own_entry_left_out_and_separate_targets():
    rng = np.random.default_rng(9)
    g = pd.DataFrame(rng.random((20, 20)), index=TASKS, columns=TASKS)
    m = _column_copy(g)
    low = m.copy()
    for t in scoring.DDS_TASKS:  # the method's own entry ranked last, all other sources exact
        low.loc[t, t] = -1.0
    assert scoring.dds_score(low, g) < 1.0
    assert scoring.dds_score(low, g, own_entry=False) == pytest.approx(1.0)
    # own entry left out = Spearman over the other 16 sources, by hand
    other = _symmetric(rng)
    t = "normal"
    src = [s for s in scoring.DDS_TASKS if s != t]
    expected = spearmanr(other.loc[src, t], g.loc[src, t]).statistic
    per = scoring.dds_per_target(other, g, own_entry=False)
    assert per[t] == pytest.approx(expected)
    # targets other than the sources: a source x target matrix (sources need not be targets)
    sources, targets = list(scoring.DDS_TASKS[:10]), ["normal", "curvature", "class_object"]
    rect = g.loc[sources, targets]
    per = scoring.dds_per_target(rect, g, sources, targets=targets)
    assert list(per.index) == targets and np.allclose(per, 1.0)
    with pytest.raises(ValueError, match="fewer than 2 sources"):
        scoring.dds_per_target(rect, g, sources[:2], targets=[sources[0]], own_entry=False)
