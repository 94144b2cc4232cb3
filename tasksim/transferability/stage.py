"""The transferability stage's steps (path in, path out), called by the rule scripts.

1. :func:`source_estimates`: one source model's features (its recorded layers, flattened, of
   the probe images) against every target's labels, for every configured estimator: one source
   file (fanned out per source on a cluster). Each source's shared work (covariance, SVD, PCA
   and mixtures) is done once per estimator and reused for every target.
2. :func:`estimator_matrix`: the source files gathered into one source x target matrix per
   estimator and layer.
3. :func:`transferability_scores`: a matrix against the transfer ground truth, by the ranking
   measures (per-target Spearman with and without the target's own encoder, weighted Kendall
   tau, Rel@1), each with a permutation p-value, next to the popularity floor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tasksim.io import write_json
from tasksim.similarity.registry import hdf5_layer
from tasksim.targets.store import read_targets, targets_info
from tasksim.taxonomy import scoring

from . import files
from .matrix import transferability_matrix

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def reduce_features(x: np.ndarray, pca_dim: int | None, seed: int = 0) -> np.ndarray:
    """Features ``[N, ...]`` flattened to ``[N, D]`` float64, then, with ``pca_dim`` below both N
    and D, projected on their first ``pca_dim`` principal components (scikit-learn's PCA, full
    SVD: deterministic)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if pca_dim is None or pca_dim >= min(x.shape):
        return x
    from sklearn.decomposition import PCA

    return PCA(n_components=int(pca_dim), svd_solver="full", random_state=seed).fit_transform(x)


def source_rows(features: Mapping[str, np.ndarray], model: str,
                targets: Mapping[str, tuple[np.ndarray, str]], estimators: Sequence[str],
                options: Mapping[str, Mapping[str, Any]], *, grid: int,
                levels: int | None) -> pd.DataFrame:
    """Rows (columns :data:`files.ROW_COLUMNS`) of one source: every estimator x layer x target.

    ``features``: ``{layer: [N, D]}`` of ``model``; ``targets``: ``{task: (labels, kind)}``.
    Estimators that read a categorical head (LEEP, NCE) get no head here and say so."""
    out = []
    for layer, x in features.items():
        for est in estimators:
            m = transferability_matrix({model: x}, targets, est, dict(options.get(est, {})),
                                       grid=grid, levels=levels, sources=[model])
            why = m.attrs.get("not_applicable", {})
            for t in m.columns:
                out.append({"estimator": est, "layer": layer, "source": model, "target": t,
                            "value": float(m.loc[model, t]), "not_applicable": why.get((model, t), "")})
    return pd.DataFrame(out, columns=list(files.ROW_COLUMNS))


def source_estimates(activations: PathLike, targets_file: PathLike, out: PathLike, model: str,
                     layers: Sequence[str], estimators: Sequence[str],
                     options: Mapping[str, Mapping[str, Any]], *, grid: int, levels: int | None,
                     pca_dim: int | None, locking: bool | None = None) -> None:
    """Write one source's estimates for every target of ``targets_file`` (:func:`source_rows`)."""
    info = targets_info(targets_file, locking)
    targets = {t: read_targets(targets_file, t, activations=activations, locking=locking)
               for t in info["tasks"]}
    feats = {}
    for layer in layers:
        feats[layer] = reduce_features(hdf5_layer(activations, layer, locking)(), pca_dim)
        log.info("%s %s: features %s", model, layer, feats[layer].shape)
    rows = source_rows(feats, model, targets, estimators, options, grid=grid, levels=levels)
    n_na = int((rows["not_applicable"] != "").sum())
    log.info("%s: %d estimates, %d not applicable", model, len(rows), n_na)
    files.write_source_rows(out, rows)


def estimator_matrix(row_files: Sequence[PathLike], targets_file: PathLike, out_h5: PathLike,
                     out_csv: PathLike, estimator: str, layer: str, sources: Sequence[str],
                     options: Mapping[str, Any], locking: bool | None = None) -> None:
    """Gather the source files into the source x target matrix of one estimator and layer."""
    info = targets_info(targets_file, locking)
    matrix, why = files.gather([files.read_source_rows(p) for p in row_files], estimator, layer,
                               sources, list(info["tasks"]))
    for line in files.describe_reasons(why):
        log.info("not applicable: %s", line)
    files.write_matrix(out_h5, out_csv, files.TransferabilityMatrix(
        matrix, estimator, layer, why, info["probe_sha256"], info["n_images"], dict(options)))


def _null_columns(scores: pd.DataFrame, groundtruth: pd.DataFrame, own_entry: bool):
    """Per target: the kept sources' scores and ground truth (finite in both, the target's own
    encoder left out unless ``own_entry``), as the ranking measures keep them."""
    for t in scores.columns:
        src = [s for s in scores.index if own_entry or s != t]
        m = scores.loc[src, t].to_numpy(dtype=float)
        g = groundtruth.loc[src, t].to_numpy(dtype=float)
        keep = np.isfinite(m) & np.isfinite(g)
        if keep.sum() >= 2:
            yield m[keep], g[keep]


def permutation_p_values(scores: pd.DataFrame, groundtruth: pd.DataFrame, *, own_entry: bool,
                         n_permutations: int, seed: int) -> dict[str, float]:
    """One-sided permutation p-value of each ranking measure's target mean (Rel@1 with the
    ``min`` baseline): within each target column the scores of the kept sources are shuffled,
    ``(1 + #{null mean >= observed}) / (1 + n_permutations)``. Vectorised over permutations
    (ranks of a shuffled column are the shuffled ranks)."""
    from scipy.stats import rankdata

    per = scoring.ranking_per_target(scores, groundtruth, own_entry=own_entry, baseline="min")
    observed = {m: scoring.target_mean(per[m]).value for m in scoring.RANKING_MEASURES}
    rng = np.random.default_rng(seed)
    null = {m: [] for m in observed}
    for m, g in _null_columns(scores, groundtruth, own_entry):
        k = m.size
        if np.ptp(m) == 0:
            continue  # a constant column chooses and ranks nothing: not scored by any measure
        perms = np.argsort(rng.random((n_permutations, k)), axis=1)
        chosen = g[np.argmax(m[perms], axis=1)]  # sources stay, their scores move
        spread = g.max() - g.min()
        null["rel_at_1"].append((chosen - g.min()) / spread if spread > 0 else np.ones(n_permutations))
        if spread == 0:
            continue  # a constant ground truth ranks nothing: not scored by the rank measures
        rm = rankdata(m)[perms]
        rm = rm - rm.mean(axis=1, keepdims=True)
        rg = rankdata(g) - rankdata(g).mean()
        null["spearman"].append(rm @ rg / np.sqrt((rm**2).sum(axis=1) * (rg**2).sum()))
        null["weighted_tau"].append(scoring.weighted_tau_rows(g, m[perms], scoring.ground_truth_ranks(g)))
    out = {}
    for name, value in observed.items():
        if not np.isfinite(value) or not null[name]:
            out[name] = np.nan
            continue
        means = np.mean(null[name], axis=0)
        out[name] = float((1 + np.sum(means >= value - 1e-12)) / (1 + n_permutations))
    return out


def score_table(scores: pd.DataFrame, groundtruth: pd.DataFrame, *, n_permutations: int,
                seed: int) -> dict[str, Any]:
    """Ranking measures of a source x target matrix against the ground truth (sources and targets
    both present in the ground truth), with and without each target's own encoder, with
    permutation p-values; the popularity floor's measures alongside."""
    sources = [s for s in scores.index if s in groundtruth.index]
    targets = [t for t in scores.columns if t in groundtruth.columns]
    if len(sources) < 2 or not targets:
        raise ValueError(f"the matrix shares {len(sources)} source(s) and {len(targets)} target(s) "
                         f"with the ground truth; at least 2 sources and 1 target are needed")
    s = scores.loc[sources, targets]
    g = groundtruth.loc[sources, targets]
    pop = scoring.popularity_scores(g, sources, targets)
    out: dict[str, Any] = {"sources": sources, "targets": targets}
    for own in (True, False):
        key = "with_own_entry" if own else "without_own_entry"
        per = scoring.ranking_per_target(s, g, own_entry=own, baseline="min")
        pvals = permutation_p_values(s, g, own_entry=own, n_permutations=n_permutations, seed=seed)
        floor = scoring.ranking_per_target(pop, g, own_entry=own, baseline="min")
        out[key] = {
            "per_target": {m: {t: _num(v) for t, v in per[m].items()} for m in scoring.RANKING_MEASURES},
            "mean": {m: _num(scoring.target_mean(per[m]).value) for m in scoring.RANKING_MEASURES},
            "n_scored": {m: scoring.target_mean(per[m]).n_scored for m in scoring.RANKING_MEASURES},
            "p_value": {m: _num(v) for m, v in pvals.items()},
            "popularity": {m: _num(scoring.target_mean(floor[m]).value) for m in scoring.RANKING_MEASURES},
        }
    return out


def _num(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def transferability_scores(matrix_file: PathLike, groundtruth: pd.DataFrame, out: PathLike, *,
                           n_permutations: int, seed: int, groundtruth_label: str) -> None:
    """Score one estimator's matrix (:func:`score_table`) and write the JSON."""
    m = files.read_matrix(matrix_file)
    table = score_table(m.matrix, groundtruth, n_permutations=n_permutations, seed=seed)
    table.update({"estimator": m.estimator, "layer": m.layer, "groundtruth": groundtruth_label,
                  "n_images": m.n_images, "n_not_applicable": len(m.not_applicable),
                  "not_applicable": files.describe_reasons(m.not_applicable)})
    write_json(out, table)
