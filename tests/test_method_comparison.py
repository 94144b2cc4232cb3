"""One comparison of both method families: known answers of the measures per target and per
group, the noise ceiling and the popularity floor as rows of the same table, estimators that do
not apply counted as unscored, and the table and figure written atomically."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from tasksim.similarity.files import write_similarity
from tasksim.transferability import comparison as cmp
from tasksim.transferability import files

# two tasks of each group, and a name that is no Taskonomy task
TASKS = ["autoencoding", "edge_texture", "depth_zbuffer", "normal", "room_layout", "vanishing_point",
         "class_object", "segment_semantic", "my_task"]
GROUP_OF = {"autoencoding": "2D", "edge_texture": "2D", "depth_zbuffer": "3D", "normal": "3D",
            "room_layout": "low_dim_geometric", "vanishing_point": "low_dim_geometric",
            "class_object": "semantic", "segment_semantic": "semantic", "my_task": "other"}


def _truth(seed=0, extra=("pixels", "random")):
    rng = np.random.default_rng(seed)
    rows = TASKS + list(extra)
    return pd.DataFrame(rng.random((len(rows), len(TASKS))), index=rows, columns=TASKS)


def test_groups_follow_the_task_table_and_unknown_names_are_other():
    assert [cmp.target_group(t) for t in TASKS] == [GROUP_OF[t] for t in TASKS]
    assert cmp.target_group("egomotion") == "other"  # a task without a group
    assert cmp.GROUPS[-1] == "other" and set(GROUP_OF.values()) == set(cmp.GROUPS)


def test_the_ground_truth_itself_scores_one_and_its_negation_minus_one_in_every_group():
    g = _truth()
    best = cmp.compare(g.loc[TASKS], g)
    worst = cmp.compare(-g.loc[TASKS], g)
    assert best.summary["n_scored"] == best.summary["n_targets"] == len(TASKS)
    for measure in ("spearman", "weighted_tau", "rel_at_1"):
        assert best.summary[measure] == pytest.approx(1.0)
    assert worst.summary["spearman"] == pytest.approx(-1.0)
    assert worst.summary["weighted_tau"] == pytest.approx(-1.0)
    assert worst.summary["rel_at_1"] == pytest.approx(0.0)   # the worst source, min baseline
    means = cmp.group_means(best.per_target)
    assert np.allclose(means.to_numpy(), 1.0)
    assert np.allclose(cmp.group_means(worst.per_target)["spearman"], -1.0)
    for grp in cmp.GROUPS:
        assert best.summary[f"spearman_{grp}"] == pytest.approx(1.0)
        assert worst.summary[f"spearman_{grp}"] == pytest.approx(-1.0)


def test_own_entry_is_left_out():
    g = _truth()
    sim = g.loc[TASKS].copy()
    for t in TASKS:  # a diagonal far below every other entry would cost points if it were ranked
        sim.loc[t, t] = -100.0
    assert cmp.compare(sim, g).summary["spearman"] == pytest.approx(1.0)
    assert (cmp.compare(sim, g).per_target["n_sources"] == len(TASKS) - 1).all()


def test_group_means_are_the_means_over_each_groups_targets():
    g = _truth(1)
    scores = pd.DataFrame(np.random.default_rng(2).random((len(TASKS), len(TASKS))), index=TASKS,
                          columns=TASKS)
    c = cmp.compare(scores, g)
    by_hand = {}
    for t in TASKS:
        src = [s for s in TASKS if s != t]
        by_hand[t] = spearmanr(scores.loc[src, t], g.loc[src, t]).statistic
    assert np.allclose(c.per_target["spearman"], [by_hand[t] for t in TASKS])
    for grp in cmp.GROUPS:
        expected = np.mean([by_hand[t] for t in TASKS if GROUP_OF[t] == grp])
        assert c.summary[f"spearman_{grp}"] == pytest.approx(expected)
    assert c.summary["spearman"] == pytest.approx(np.mean(list(by_hand.values())))


def test_an_estimator_that_does_not_apply_is_unscored_not_zero():
    g = _truth(3)
    m = g.loc[TASKS].copy()
    m["class_object"] = np.nan            # not applicable to one target
    c = cmp.compare(m, g)
    assert c.summary["n_scored"] == len(TASKS) - 1 and c.summary["n_targets"] == len(TASKS)
    assert np.isnan(c.per_target.loc["class_object", "spearman"])
    assert c.summary["spearman"] == pytest.approx(1.0)          # a zero would pull it below 1
    assert c.summary["spearman_semantic"] == pytest.approx(1.0)  # the other semantic target only
    none = cmp.compare(m * np.nan, g)     # applicable to no target
    assert none.summary["n_scored"] == 0 and np.isnan(none.summary["spearman"])
    assert all(np.isnan(none.summary[f"spearman_{grp}"]) for grp in cmp.GROUPS)


def test_a_source_a_matrix_lacks_is_missing_not_zero():
    g = _truth(4)
    c = cmp.compare(g.loc[TASKS[1:]], g, TASKS, TASKS)   # no row for the first source
    assert c.summary["spearman"] == pytest.approx(1.0)
    assert c.per_target.loc["normal", "n_sources"] == len(TASKS) - 2


def _identical_halves(sources, targets, n_images=40, seed=5):
    """Per-image losses where every test image is a copy of one: any split gives identical halves."""
    rng = np.random.default_rng(seed)
    return {t: np.repeat(rng.permutation(len(sources))[:, None].astype(float), n_images, axis=1)
            for t in targets}


def test_ceiling_of_identical_halves_is_one():
    loss_sources = TASKS + ["pixels", "random"]
    losses = _identical_halves(loss_sources, TASKS)
    c = cmp.ceiling_comparison(losses, loss_sources, TASKS, TASKS, n_splits=3, seed=0)
    assert c.summary["n_scored"] == len(TASKS)
    for measure in ("spearman", "weighted_tau", "rel_at_1"):
        assert c.summary[measure] == pytest.approx(1.0)
    assert all(c.summary[f"spearman_{grp}"] == pytest.approx(1.0) for grp in cmp.GROUPS)
    # a target without losses is listed, not scored
    part = cmp.ceiling_comparison({t: losses[t] for t in TASKS[:-1]}, loss_sources, TASKS, TASKS,
                                  n_splits=1)
    assert part.summary["n_scored"] == len(TASKS) - 1 and np.isnan(part.summary["spearman_other"])


def test_popularity_floor_is_a_row_of_the_same_function():
    g = _truth(6)
    from tasksim.taxonomy import scoring

    pop = cmp.popularity_comparison(g, TASKS, TASKS)
    direct = cmp.compare(scoring.popularity_scores(g.loc[TASKS, TASKS]), g, TASKS, TASKS)
    assert pop.summary == pytest.approx(direct.summary, nan_ok=True)
    row = cmp.comparison_row("reference", cmp.POPULARITY, "", pop)
    assert row["family"] == "reference" and row["method"] == cmp.POPULARITY
    with pytest.raises(ValueError, match="family"):
        cmp.comparison_row("label free", "rsa", "L", pop)


def _write_inputs(tmp_path, g):
    sim = g.loc[TASKS, TASKS].to_numpy()
    sim = (sim + sim.T) / 2
    paths = {"sim": tmp_path / "similarity" / "rsa" / "L.h5"}
    paths["sim"].parent.mkdir(parents=True)
    write_similarity(paths["sim"], paths["sim"].with_suffix(".csv"), sim, TASKS, "rsa", "L", {}, "sha", 10)
    tr = tmp_path / "transferability"
    good = g.loc[TASKS].copy()
    leep = good * np.nan
    for name, m in (("logme", good), ("leep", leep)):
        (tr / name).mkdir(parents=True)
        why = {(s, t): "no categorical head" for s in m.index for t in m.columns if np.isnan(m.loc[s, t])}
        files.write_matrix(tr / name / "L.h5", tr / name / "L.csv",
                           files.TransferabilityMatrix(m, name, "L", why, "sha", 10))
        paths[name] = tr / name / "L.h5"
    loss_sources = TASKS + ["pixels", "random"]
    paths["losses"] = tmp_path / "losses.npz"
    np.savez(paths["losses"], sources=np.array(loss_sources), **_identical_halves(loss_sources, TASKS))
    paths["gt"] = tmp_path / "affinity.csv"
    g.to_csv(paths["gt"])
    return paths, tr


def _run(paths, tr):
    return cmp.method_comparison_files(
        [paths["sim"]], [paths["logme"], paths["leep"]], paths["gt"], tr / "comparison.csv",
        tr / "comparison.png", sources=TASKS + ["unused_model"], losses=paths["losses"],
        groundtruth_label="measured Mini-Taskonomy affinity", run="test run", seed=0)


def test_writer_produces_the_table_and_figure_atomically(tmp_path, monkeypatch):
    g = _truth(7)
    paths, tr = _write_inputs(tmp_path, g)
    before = set(tr.iterdir())
    table = _run(paths, tr)
    assert set(tr.iterdir()) - before == {tr / "comparison.csv", tr / "comparison.png"}  # no leftovers
    assert (tr / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_csv(tr / "comparison.csv", keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(cmp.COLUMNS)
    assert list(back["family"]) == ["label-free", "label-based", "label-based", "reference", "reference"]
    assert list(back["method"]) == ["rsa", "logme", "leep", cmp.CEILING, cmp.POPULARITY]
    rows = back.set_index("method")
    assert rows.loc["logme", "spearman"] == pytest.approx(1.0)       # the ground truth itself
    assert rows.loc[cmp.CEILING, "spearman"] == pytest.approx(1.0)   # identical halves
    assert rows.loc["leep", "n_scored"] == 0 and np.isnan(rows.loc["leep", "spearman"])
    assert (rows["n_targets"] == len(TASKS)).all()
    assert np.isclose(table["spearman"].to_numpy(), back["spearman"].to_numpy(), equal_nan=True).all()

    # a failure while drawing leaves the old figure in place and no partial file
    (tr / "comparison.png").unlink()

    def broken(*args, **kwargs):
        raise RuntimeError("no figure")

    monkeypatch.setattr(cmp, "comparison_figure", broken)
    with pytest.raises(RuntimeError):
        _run(paths, tr)
    assert not (tr / "comparison.png").exists()
    assert {p.name for p in tr.iterdir()} == {p.name for p in before} | {"comparison.csv"}


def test_writer_refuses_a_ground_truth_without_the_sources(tmp_path):
    g = _truth(8)
    paths, tr = _write_inputs(tmp_path, g)
    with pytest.raises(ValueError, match="at least 2 sources"):
        cmp.method_comparison_files([paths["sim"]], [], paths["gt"], tr / "c.csv", tr / "c.png",
                                    sources=["nobody"], losses=None, groundtruth_label="x", run="r", seed=0)
    assert not (tr / "c.csv").exists()


def test_estimator_interval_is_the_percentile_interval_of_the_replicates_mean_spearman():
    from tasksim.taxonomy import scoring

    rng = np.random.default_rng(8)
    names = ["normal", "depth_zbuffer", "reshading", "edge_texture", "autoencoding", "denoising"]
    gt = pd.DataFrame(rng.random((6, 6)), index=names, columns=names)
    reps = np.stack([gt.to_numpy() + s * rng.normal(size=(6, 6)) for s in np.linspace(0.05, 1.0, 30)])
    lo, hi = cmp.spearman_interval(reps, names, names, gt, names, names)
    means = [scoring.spearman_score(pd.DataFrame(b, index=names, columns=names), gt, own_entry=False).value
             for b in reps]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    # a replicate set that scores nothing has no interval
    assert all(np.isnan(cmp.spearman_interval(np.full((3, 6, 6), np.nan), names, names, gt, names, names)))
    row = cmp.comparison_row("label-based", "logme", "L", cmp.compare(gt, gt), (lo, hi))
    assert (row["spearman_low"], row["spearman_high"]) == (lo, hi)


def test_figure_draws_an_interval_that_does_not_contain_the_point(tmp_path):
    """A percentile interval may lie beside the point estimate (a biased resampled statistic)."""
    gt = pd.DataFrame(np.random.default_rng(1).random((4, 4)), index=list("abcd"), columns=list("abcd"))
    rows = [cmp.comparison_row("label-based", "logme", "L", cmp.compare(gt, gt), (0.2, 0.6)),
            cmp.comparison_row("reference", cmp.POPULARITY, "", cmp.popularity_comparison(gt, list("abcd"),
                                                                                       list("abcd")))]
    fig = cmp.comparison_figure(cmp.comparison_table(rows), "t")
    assert len(fig.axes[0].collections) >= 1   # the interval's line


def test_label_free_interval_rebuilds_rsa_on_the_estimators_resamples(tmp_path):
    """RSA's interval in the comparison: its matrix rebuilt from the stored RDMs on each of the
    resamples the estimators use (same seed, same images), scored like the point value; checked
    against RSA computed directly (Spearman of the stored float32 RDMs' upper triangles over the pairs of distinct
    resampled images, each pair as often as the resample draws it)."""
    from scipy.spatial.distance import pdist, squareform

    from tasksim.similarity.files import write_rdms
    from tasksim.transferability.stage import resamples

    rng = np.random.default_rng(11)
    n_img, names = 12, TASKS[:6]
    feats = {m: rng.normal(size=(n_img, 5)) + (0.5 if i % 2 else 0) * rng.normal(size=(n_img, 1))
             for i, m in enumerate(names)}
    rdm = {m: squareform(pdist(x, "correlation")) for m, x in feats.items()}
    rdm_files = {}
    for m in names:
        rdm_files[m] = tmp_path / "rdms" / f"{m}.h5"
        rdm_files[m].parent.mkdir(exist_ok=True)
        write_rdms(rdm_files[m], [f"img{i}" for i in range(n_img)], {"L": rdm[m]}, {"model": m})

    def rsa_on(idx):  # pairs of distinct images, with their multiplicity in the resample
        i, j = np.triu_indices(len(idx), k=1)
        distinct = idx[i] != idx[j]
        tri = np.stack([rdm[m].astype(np.float32)[idx[i][distinct], idx[j][distinct]] for m in names])
        return pd.DataFrame(spearmanr(tri.T).statistic, index=names, columns=names)

    g = _truth(12).loc[names + ["pixels"], names]
    sim_path = tmp_path / "similarity" / "rsa" / "L.h5"
    sim_path.parent.mkdir(parents=True)
    write_similarity(sim_path, sim_path.with_suffix(".csv"), rsa_on(np.arange(n_img)).to_numpy(), names,
                     "rsa", "L", {}, "sha", n_img)
    g.to_csv(tmp_path / "gt.csv")
    table = cmp.method_comparison_files(
        [sim_path], [], tmp_path / "gt.csv", tmp_path / "c.csv", tmp_path / "c.png", sources=names,
        losses=None, groundtruth_label="x", run="r", seed=3, n_bootstrap=25, rdm_files=rdm_files,
        options={"rsa": {"comparison": "spearman"}})
    means = [cmp.compare(rsa_on(idx), g, names, names).summary["spearman"] for idx in resamples(n_img, 25, 3)]
    row = table.set_index("method").loc["rsa"]
    assert (row["spearman_low"], row["spearman_high"]) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert row["spearman"] == pytest.approx(cmp.compare(rsa_on(np.arange(n_img)), g, names, names).summary["spearman"])
    # without resamples, or without the stored RDMs, no interval (and the point value stays)
    for kw in ({"n_bootstrap": 0, "rdm_files": rdm_files}, {"n_bootstrap": 5, "rdm_files": None}):
        t = cmp.method_comparison_files([sim_path], [], tmp_path / "gt.csv", tmp_path / "c.csv",
                                        tmp_path / "c.png", sources=names, losses=None, groundtruth_label="x",
                                        run="r", seed=3, **kw).set_index("method")
        assert np.isnan(t.loc["rsa", "spearman_low"]) and t.loc["rsa", "spearman"] == row["spearman"]
