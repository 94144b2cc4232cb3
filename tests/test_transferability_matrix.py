"""Source x target matrix driver: pair-by-pair equality, shared work once per source, NaN cells."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tasksim.transferability import (
    ESTIMATORS,
    dense_to_cells,
    estimators,
    leep,
    mean_over_cells,
    nce,
    transferability_matrix,
)

N, D, GRID, LEVELS = 48, 6, 2, 3


def _inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(N, 3))
    features = {f"m{i}": np.c_[latent[:, : i + 1], rng.normal(size=(N, D - i - 1))] @ rng.normal(size=(D, D))
                for i in range(3)}
    depth = latent[:, 0, None, None] + 0.3 * rng.normal(size=(N, 8, 8))
    targets = {
        "class_object": (np.digitize(latent[:, 1], [-0.5, 0.5]), "class"),
        "segment_semantic": ((depth > 0).astype(np.int64) + (rng.random((N, 8, 8)) > 0.8), "dense_class"),
        "depth_zbuffer": (depth.astype(np.float32), "dense_regression"),
        "normal": (rng.normal(size=(N, 8, 8, 2)) + latent[:, 2, None, None, None], "dense_regression"),
        "room_layout": (latent[:, :2] + 0.1 * rng.normal(size=(N, 2)), "vector_regression"),
        "segment_unsup2d": (rng.integers(0, 5, (N, 8, 8)), "dense_instance"),
    }
    return features, targets


def _expected(name, x, labels, kind, options):
    """One pair, computed directly from the estimator (no driver)."""
    spec = ESTIMATORS[name]
    if kind == "dense_instance":
        return np.nan
    if kind == "class":
        return spec.function(x, labels, **options) if "class" in spec.label_kinds else np.nan
    if kind == "vector_regression":
        labels = labels[:, None, None, :]
    grid = 1 if kind == "vector_regression" else GRID
    if kind == "dense_class":
        return mean_over_cells(name, x, dense_to_cells(labels, grid), **options) \
            if "class" in spec.label_kinds else np.nan
    if "regression" in spec.label_kinds:
        return mean_over_cells(name, x, dense_to_cells(labels, grid), **options)
    return mean_over_cells(name, x, dense_to_cells(labels, grid, LEVELS), **options)


@pytest.mark.parametrize("name, options", [
    ("hscore", {}), ("shrinkage_hscore", {}), ("logme", {}), ("nleep", {"variance": 0.9}),
    ("transrate", {"eps": 1e-3}), ("gbc", {}), ("linear_mse", {"ridge": 0.5}),
    ("parc", {"pca_components": 4}),
])
def test_matrix_equals_pair_by_pair(name, options):
    features, targets = _inputs()
    got = transferability_matrix(features, targets, name, options, grid=GRID, levels=LEVELS)
    assert list(got.index) == list(features) and list(got.columns) == list(targets)
    for s, x in features.items():
        for t, (labels, kind) in targets.items():
            want = _expected(name, x, labels, kind, dict(options))
            if np.isnan(want):
                assert np.isnan(got.loc[s, t]), (s, t)
            else:
                assert got.loc[s, t] == pytest.approx(want, rel=1e-9, abs=1e-12), (s, t)
    assert got.notna().to_numpy().sum() >= 3 * 3          # not everything not applicable


def test_shared_work_once_per_source(monkeypatch):
    features, targets = _inputs()
    for name in ("hscore", "logme", "nleep", "linear_mse", "parc", "transrate"):
        spec = ESTIMATORS[name]
        calls = []

        def counting(x, *args, _prepare=spec.prepare, **kwargs):
            calls.append(x.shape)
            return _prepare(x, *args, **kwargs)

        monkeypatch.setitem(estimators.ESTIMATORS, name, dataclasses.replace(spec, prepare=counting))
        got = transferability_matrix(features, targets, name, grid=GRID, levels=LEVELS)
        assert len(calls) == len(features), name                  # once per source, not per cell
        assert np.isfinite(got.to_numpy()).sum() > len(features), name


def test_nleep_mixtures_are_shared_between_targets_with_equal_class_counts(monkeypatch):
    from sklearn.mixture import GaussianMixture

    features, targets = _inputs()
    fitted = []
    fit = GaussianMixture.fit

    def counting(self, x, y=None):
        fitted.append(self.n_components)
        return fit(self, x, y)

    monkeypatch.setattr(GaussianMixture, "fit", counting)
    got = transferability_matrix(features, targets, "nleep", grid=GRID, levels=LEVELS)
    n_pairs = np.isfinite(got.to_numpy()).sum()
    # class counts present: 3 (class_object, most quantized cells) and 2 (the other cells)
    assert sorted(fitted) == [10, 10, 10, 15, 15, 15] and n_pairs == 3 * 5


def test_not_applicable_cells_are_nan_with_reasons():
    features, targets = _inputs()
    got = transferability_matrix(features, targets, "hscore", grid=GRID)      # no levels
    assert got[["depth_zbuffer", "normal", "room_layout", "segment_unsup2d"]].isna().all().all()
    assert got[["class_object", "segment_semantic"]].notna().all().all()
    why = got.attrs["not_applicable"]
    assert "levels" in why[("m0", "depth_zbuffer")] and "within one image" in why[("m0", "segment_unsup2d")]
    mse = transferability_matrix(features, targets, "linear_mse", grid=GRID, levels=LEVELS)
    assert mse[["class_object", "segment_semantic", "segment_unsup2d"]].isna().all().all()
    assert mse[["depth_zbuffer", "normal", "room_layout"]].notna().all().all()
    # a row for a source without features
    extra = transferability_matrix(features, targets, "hscore", sources=["m0", "nobody"], grid=GRID)
    assert extra.loc["nobody"].isna().all()
    assert "no features" in extra.attrs["not_applicable"][("nobody", "class_object")]


def test_leep_and_nce_read_heads_and_sources_without_one_are_nan():
    features, targets = _inputs()
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(N, 4)) + 2 * targets["class_object"][0][:, None] * np.eye(4)[1]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    heads = {"m1": probs}
    for name, function, head in (("leep", leep, probs), ("nce", nce, probs.argmax(axis=1))):
        got = transferability_matrix(features, targets, name, heads=heads, grid=GRID)
        assert got.loc[["m0", "m2"]].isna().all().all()
        assert "no categorical head" in got.attrs["not_applicable"][("m0", "class_object")]
        assert got.loc["m1", "class_object"] == pytest.approx(function(head, targets["class_object"][0]))
        cells = dense_to_cells(targets["segment_semantic"][0], GRID)
        assert got.loc["m1", "segment_semantic"] == pytest.approx(mean_over_cells(function, head, cells))
        assert got.loc["m1", ["depth_zbuffer", "room_layout"]].isna().all()
    # NCE also takes predicted classes directly
    direct = transferability_matrix({}, targets, "nce", heads={"m1": probs.argmax(axis=1)}, grid=GRID)
    assert direct.loc["m1", "class_object"] == pytest.approx(nce(probs.argmax(axis=1), targets["class_object"][0]))


def test_bad_targets_are_named():
    features, targets = _inputs()
    with pytest.raises(ValueError, match="target room_layout"):
        transferability_matrix(features, {"room_layout": (np.zeros((N, 2), dtype=np.int64), "vector_regression")},
                               "logme")
    with pytest.raises(ValueError, match="unknown label kind"):
        transferability_matrix(features, {"x": (targets["class_object"][0], "classes")}, "logme")
    with pytest.raises(ValueError, match="source m0, target class_object"):
        transferability_matrix({"m0": features["m0"][:10]}, {"class_object": targets["class_object"]}, "hscore")
