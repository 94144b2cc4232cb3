"""The transferability stage: one source's rows, the gathered matrix and its file, the scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasksim.transferability import files, stage


def _targets(n=60, seed=0):
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    reg = rng.normal(size=n)
    return {"cls": (cls, "class"), "reg": (reg, "regression")}, cls, reg


def test_source_rows_cover_every_estimator_layer_target_and_name_what_does_not_apply():
    targets, cls, reg = _targets()
    rng = np.random.default_rng(1)
    good = np.eye(3)[cls] * 5 + 0.1 * rng.normal(size=(60, 3))
    feats = {"encoder_output": np.c_[good, reg[:, None]], "block3": rng.normal(size=(60, 4))}
    rows = stage.source_rows(feats, "m", targets, ["hscore", "logme", "leep"], {}, grid=4, levels=None)
    assert len(rows) == 2 * 3 * 2 and list(rows.columns) == list(files.ROW_COLUMNS)
    r = rows.set_index(["estimator", "layer", "target"])
    # H-score is a class estimator: a regression target is not applicable, with the reason
    assert np.isnan(r.loc[("hscore", "encoder_output", "reg"), "value"])
    assert r.loc[("hscore", "encoder_output", "reg"), "not_applicable"]
    # LEEP needs a categorical head, which a feature file does not have
    assert r.xs("leep", level="estimator")["value"].isna().all()
    assert (r.xs("leep", level="estimator")["not_applicable"] != "").all()
    # informative features beat noise features for the class target
    assert r.loc[("hscore", "encoder_output", "cls"), "value"] > r.loc[("hscore", "block3", "cls"), "value"]
    assert r.loc[("logme", "encoder_output", "reg"), "value"] > r.loc[("logme", "block3", "reg"), "value"]


def _head(cls, n_classes=5, seed=2):
    """Probabilities [N, n_classes] of a head that leans towards the class of each image."""
    logits = np.random.default_rng(seed).normal(size=(len(cls), n_classes))
    logits[np.arange(len(cls)), cls] += 2.0
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _head_targets(n=60):
    targets, cls, reg = _targets(n)
    dense = np.random.default_rng(3).integers(0, 3, (n, 8, 8))
    return {**targets, "dense": (dense, "dense_class")}, cls, dense


def test_a_head_gives_leep_and_nce_equal_to_the_estimators_on_the_same_arrays():
    from tasksim.transferability.estimators import dense_to_cells, leep, mean_over_cells, nce

    targets, cls, dense = _head_targets()
    head = _head(cls)
    rng = np.random.default_rng(4)
    feats = {"block3": rng.normal(size=(60, 4)), "encoder_output": rng.normal(size=(60, 4))}
    rows = stage.source_rows(feats, "m", targets, ["leep", "nce"], {}, grid=2, levels=None, head=head)
    r = rows.set_index(["estimator", "layer", "target"])
    cells = dense_to_cells(dense, 2)
    for layer in feats:  # the head, not the layer, is read: the same estimate at every layer
        assert r.loc[("leep", layer, "cls"), "value"] == pytest.approx(leep(head, cls), rel=1e-12)
        assert r.loc[("nce", layer, "cls"), "value"] == pytest.approx(nce(head.argmax(1), cls), rel=1e-12)
        assert r.loc[("leep", layer, "dense"), "value"] == pytest.approx(mean_over_cells(leep, head, cells),
                                                                         rel=1e-12)
        assert r.loc[("nce", layer, "dense"), "value"] == pytest.approx(
            mean_over_cells(nce, head.argmax(1), cells), rel=1e-12)
        # float labels without levels: not applicable, with the reason
        assert np.isnan(r.loc[("leep", layer, "reg"), "value"]) and r.loc[("leep", layer, "reg"), "not_applicable"]
    assert np.isfinite(rows[rows.target != "reg"]["value"]).all()
    assert leep(head, cls) > leep(_head(np.zeros_like(cls)), cls)  # the head's lean is what LEEP sees
    # without a head: NaN everywhere, each with the reason
    bare = stage.source_rows(feats, "m", targets, ["leep", "nce"], {}, grid=2, levels=None)
    assert bare["value"].isna().all() and bare["not_applicable"].str.contains("no categorical head").all()
    with pytest.raises(ValueError, match="59 rows for 60 images"):
        stage.source_rows(feats, "m", targets, ["leep"], {}, grid=2, levels=None, head=head[:59])


def test_bootstrap_replicates_resample_the_head_with_the_features_and_labels():
    from tasksim.transferability.estimators import dense_to_cells, leep, mean_over_cells, nce

    targets, cls, dense = _head_targets()
    head = _head(cls)
    feats = {"L": np.random.default_rng(4).normal(size=(60, 4))}
    rows = stage.source_rows(feats, "m", targets, ["leep", "nce", "hscore"], {}, grid=2, levels=None,
                             n_bootstrap=3, seed=5, head=head)
    idx = stage.resamples(60, 3, 5)
    for r in (1, 2, 3):
        i = idx[r - 1]
        got = rows[rows.replicate == r].set_index(["estimator", "target"])["value"]
        assert got[("leep", "cls")] == pytest.approx(leep(head[i], cls[i]), rel=1e-12)
        assert got[("nce", "cls")] == pytest.approx(nce(head[i].argmax(1), cls[i]), rel=1e-12)
        assert got[("leep", "dense")] == pytest.approx(mean_over_cells(leep, head[i], dense_to_cells(dense[i], 2)),
                                                       rel=1e-12)
        # the head's rows are those of the features and labels: not the unresampled head
        assert got[("leep", "cls")] != pytest.approx(leep(head, cls[i]), rel=1e-6)


def test_pca_reduction_keeps_shape_below_n_and_is_a_no_op_when_not_asked():
    x = np.random.default_rng(0).normal(size=(20, 2, 3, 5))
    assert stage.reduce_features(x, None).shape == (20, 30)
    assert stage.reduce_features(x, 50).shape == (20, 30)
    z = stage.reduce_features(x, 7)
    assert z.shape == (20, 7)
    # principal components: uncorrelated, in decreasing variance
    c = np.cov(z.T)
    assert np.allclose(c - np.diag(np.diag(c)), 0, atol=1e-8)
    assert np.all(np.diff(np.diag(c)) <= 1e-12)


def _rows(sources, targets, value, reason="", replicate=0):
    return pd.DataFrame([{"estimator": "hscore", "layer": "L", "replicate": replicate, "source": s, "target": t,
                          "value": value(s, t), "not_applicable": reason if np.isnan(value(s, t)) else ""}
                         for s in sources for t in targets])


def test_gather_builds_the_matrix_and_fails_on_a_missing_or_repeated_cell():
    src, tgt = ["a", "b", "c"], ["x", "y"]
    val = {("a", "x"): 1.0, ("a", "y"): 2.0, ("b", "x"): 3.0, ("b", "y"): np.nan,
           ("c", "x"): 5.0, ("c", "y"): 6.0}
    rows = [_rows([s], tgt, lambda s, t: val[(s, t)], "no head") for s in src]
    m, why = files.gather(rows, "hscore", "L", src, tgt)
    assert m.loc["c", "y"] == 6.0 and np.isnan(m.loc["b", "y"]) and why == {("b", "y"): "no head"}
    with pytest.raises(ValueError, match="source c, target x"):
        files.gather(rows[:2], "hscore", "L", src, tgt)
    with pytest.raises(ValueError, match="appears twice"):
        files.gather(rows + rows[:1], "hscore", "L", src, tgt)


def test_matrix_file_round_trips_and_refuses_nan_without_a_reason(tmp_path):
    m = pd.DataFrame([[1.0, np.nan], [0.5, 2.0]], index=["a", "b"], columns=["x", "y"])
    tm = files.TransferabilityMatrix(m, "hscore", "L", {("a", "y"): "no head"}, "abc", 10, {"k": 1})
    files.write_matrix(tmp_path / "m.h5", tmp_path / "m.csv", tm)
    back = files.read_matrix(tmp_path / "m.h5")
    pd.testing.assert_frame_equal(back.matrix, m, check_names=False)
    assert back.not_applicable == {("a", "y"): "no head"} and back.n_images == 10
    assert pd.read_csv(tmp_path / "m.csv", index_col=0).isna().sum().sum() == 1
    bad = files.TransferabilityMatrix(m, "hscore", "L", {}, "abc", 10)
    with pytest.raises(ValueError, match="source a for target y"):
        files.write_matrix(tmp_path / "n.h5", tmp_path / "n.csv", bad)
    assert not (tmp_path / "n.h5").exists() and not (tmp_path / "n.csv").exists()
    with pytest.raises(ValueError, match="without a reason"):
        files.write_source_rows(tmp_path / "r.csv", _rows(["a"], ["x"], lambda s, t: np.nan))
    assert not (tmp_path / "r.csv").exists()


def test_scores_of_the_ground_truth_itself_are_perfect_and_significant():
    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(8)]
    gt = pd.DataFrame(rng.random((8, 8)), index=names, columns=names)
    table = stage.score_table(gt, gt, n_permutations=99, seed=0)
    for key in ("with_own_entry", "without_own_entry"):
        assert table[key]["mean"]["spearman"] == pytest.approx(1.0)
        assert table[key]["mean"]["rel_at_1"] == pytest.approx(1.0)
        assert table[key]["p_value"]["spearman"] == pytest.approx(0.01)
    # reversed scores: the worst possible agreement, p-value near 1
    table = stage.score_table(-gt, gt, n_permutations=99, seed=0)
    assert table["with_own_entry"]["mean"]["spearman"] == pytest.approx(-1.0)
    assert table["with_own_entry"]["p_value"]["spearman"] == pytest.approx(1.0)


def test_random_scores_are_not_significant_and_nan_cells_are_left_out():
    rng = np.random.default_rng(3)
    names = [f"t{i}" for i in range(10)]
    gt = pd.DataFrame(rng.random((10, 10)), index=names, columns=names)
    noise = pd.DataFrame(rng.random((10, 10)), index=names, columns=names)
    noise.iloc[0, 1] = np.nan
    table = stage.score_table(noise, gt, n_permutations=200, seed=1)
    assert table["without_own_entry"]["p_value"]["spearman"] > 0.05
    assert table["without_own_entry"]["n_scored"]["spearman"] == 10


def test_vectorised_permutation_null_matches_shuffling_the_matrix():
    """The null mean of a shuffled column, computed from shuffled ranks, equals the measures
    recomputed on the shuffled matrix itself."""
    from tasksim.taxonomy import scoring

    rng = np.random.default_rng(5)
    names = [f"t{i}" for i in range(6)]
    gt = pd.DataFrame(rng.random((6, 6)), index=names, columns=names)
    sc = pd.DataFrame(rng.random((6, 6)), index=names, columns=names)
    # one permutation, applied by hand to every column's kept sources (own entry left out)
    perm_rng = np.random.default_rng(11)
    shuffled = sc.copy()
    for t in names:
        kept = [s for s in names if s != t]
        order = np.argsort(perm_rng.random(len(kept)))
        shuffled.loc[kept, t] = sc.loc[kept, t].to_numpy()[order]
    direct = scoring.ranking_per_target(shuffled, gt, own_entry=False, baseline="min")
    # the same draws inside permutation_p_values: p is 1 or 1/2 depending on null >= observed
    for measure in scoring.RANKING_MEASURES:
        null_mean = scoring.target_mean(direct[measure]).value
        obs = scoring.target_mean(scoring.ranking_per_target(sc, gt, own_entry=False,
                                                             baseline="min")[measure]).value
        p = stage.permutation_p_values(sc, gt, own_entry=False, n_permutations=1, seed=11)[measure]
        assert p == (1.0 if null_mean >= obs - 1e-12 else 0.5), measure


def test_a_constant_score_column_is_unscored_by_every_measure():
    """An estimator that gives every source the same value for a target (H-score at its C - 1
    bound, say) chooses nothing there: Rel@1 leaves that target out as the rank measures do."""
    rng = np.random.default_rng(2)
    names = [f"t{i}" for i in range(6)]
    gt = pd.DataFrame(rng.random((6, 6)), index=names, columns=names)
    sc = gt.copy()
    sc["t2"] = 3.0
    table = stage.score_table(sc, gt, n_permutations=49, seed=0)
    for key in ("with_own_entry", "without_own_entry"):
        assert table[key]["n_scored"] == {"spearman": 5, "weighted_tau": 5, "rel_at_1": 5}
        assert table[key]["per_target"]["rel_at_1"]["t2"] is None
        assert table[key]["mean"]["rel_at_1"] == pytest.approx(1.0)
        assert table[key]["p_value"]["rel_at_1"] == pytest.approx(0.02)


def test_bootstrap_replicates_resample_features_and_labels_together_and_alike_for_every_source():
    targets, cls, reg = _targets(n=40)
    rng = np.random.default_rng(1)
    good = np.c_[np.eye(3)[cls] * 5 + 0.1 * rng.normal(size=(40, 3)), reg[:, None]]
    rows = stage.source_rows({"L": good}, "m", targets, ["logme"], {}, grid=4, levels=None,
                             n_bootstrap=4, seed=7)
    assert sorted(rows["replicate"].unique()) == [0, 1, 2, 3, 4]
    # replicate r is the estimator on the images of resample r, labels resampled with them
    idx = stage.resamples(40, 4, 7)
    from tasksim.transferability.estimators import logme
    for r in (1, 4):
        got = rows[(rows.replicate == r) & (rows.target == "cls")]["value"].item()
        assert got == pytest.approx(logme(good[idx[r - 1]], cls[idx[r - 1]]), rel=1e-9)
    # the resamples depend on the seed alone, not on the source
    np.testing.assert_array_equal(idx, stage.resamples(40, 4, 7))
    assert stage.resamples(40, 0, 7).shape == (0, 40)


def test_matrix_file_keeps_the_bootstrap_replicates_and_scores_get_intervals(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(6)]
    gt = pd.DataFrame(rng.random((6, 6)), index=names, columns=names)
    # replicates: the ground truth plus noise of growing size -> intervals that hold the point
    point = gt + 0.01 * rng.normal(size=(6, 6))
    reps = np.stack([gt.to_numpy() + s * rng.normal(size=(6, 6)) for s in np.linspace(0.01, 0.5, 20)])
    rows = []
    for r, mat in enumerate([point.to_numpy(), *reps]):
        rows += [_rows([s], names, lambda s, t, mat=mat: mat[names.index(s), names.index(t)], replicate=r)
                 for s in names]
    boot = files.gather_bootstrap(rows, "hscore", "L", names, names)
    np.testing.assert_allclose(boot, reps)
    assert files.gather_bootstrap(rows[:6], "hscore", "L", names, names) is None
    with pytest.raises(ValueError, match="different numbers of bootstrap replicates"):
        files.gather_bootstrap(rows[:6] + rows[7:13], "hscore", "L", names, names)
    m, why = files.gather(rows, "hscore", "L", names, names)
    tm = files.TransferabilityMatrix(m, "hscore", "L", why, "abc", 10, {}, boot)
    files.write_matrix(tmp_path / "m.h5", tmp_path / "m.csv", tm)
    back = files.read_matrix(tmp_path / "m.h5")
    np.testing.assert_array_equal(back.bootstrap, reps)
    with pytest.raises(ValueError, match="do not match"):
        files.write_matrix(tmp_path / "n.h5", tmp_path / "n.csv",
                           files.TransferabilityMatrix(m, "hscore", "L", why, "abc", 10, {}, boot[:, :5]))
    assert not (tmp_path / "n.h5").exists()
    table = stage.score_table(back.matrix, gt, n_permutations=19, seed=0, bootstrap=back.bootstrap)
    assert table["n_bootstrap"] == 20
    for key in ("with_own_entry", "without_own_entry"):
        lo, hi = table[key]["interval"]["spearman"]
        # the interval is that of the replicates' target means, by hand
        from tasksim.taxonomy import scoring
        means = [scoring.spearman_score(pd.DataFrame(b, index=names, columns=names), gt,
                                        own_entry=key == "with_own_entry").value for b in reps]
        assert (lo, hi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
        assert lo < hi <= 1.0
    assert "interval" not in stage.score_table(back.matrix, gt, n_permutations=19, seed=0)["with_own_entry"]
