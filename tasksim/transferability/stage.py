"""The transferability stage's steps (path in, path out), called by the rule scripts.

1. :func:`source_estimates`: one source model's features (its recorded layers, flattened, of
   the probe images), and its categorical head's class probabilities where it has one, against
   every target's labels, for every configured estimator, on all probe images and on each
   bootstrap resample of them: one source file (fanned out per source on a cluster). Each
   source's shared work (covariance, SVD, PCA and mixtures) is done once per estimator and
   image set and reused for every target.
2. :func:`estimator_matrix`: the source files gathered into one source x target matrix per
   estimator and layer, with the matrices of the bootstrap replicates.
3. :func:`transferability_scores`: a matrix against the transfer ground truth, by the ranking
   measures (per-target Spearman with and without the target's own encoder, weighted Kendall
   tau, Rel@1), each with a bootstrap interval over the probe images and a permutation p-value,
   next to the popularity floor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from tasksim.io import write_json
from tasksim.similarity.registry import hdf5_layer
from tasksim.targets.store import check_same_probe, read_targets, targets_info
from tasksim.taxonomy import scoring
from tasksim.taxonomy.uncertainty import bootstrap_indices

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


def resamples(n_images: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """``[n_bootstrap, n_images]`` image indices of the bootstrap replicates: drawn with
    replacement from ``seed`` alone, so every source's replicate ``r`` uses the same images."""
    if n_bootstrap == 0:
        return np.zeros((0, n_images), dtype=np.int64)
    return bootstrap_indices(n_images, n_bootstrap, seed)


def source_rows(features: Mapping[str, np.ndarray], model: str,
                targets: Mapping[str, tuple[np.ndarray, str]], estimators: Sequence[str],
                options: Mapping[str, Mapping[str, Any]], *, grid: int,
                levels: int | None, n_bootstrap: int = 0, seed: int = 0,
                head: np.ndarray | None = None) -> pd.DataFrame:
    """Rows (columns :data:`files.ROW_COLUMNS`) of one source: every estimator x layer x target,
    on all probe images (``replicate`` 0) and on each of ``n_bootstrap`` resamples of them
    (:func:`resamples`; features, labels and head resampled together, replicates 1..B).

    ``features``: ``{layer: [N, D]}`` of ``model``; ``targets``: ``{task: (labels, kind)}``;
    ``head``: the class probabilities ``[N, C]`` of ``model``'s categorical head on the same
    images, or None. Estimators that read a categorical head (LEEP, NCE) read ``head`` in place
    of the features, so their estimate is the same at every layer; without a head they are NaN
    with the reason (the source has no categorical head). A pair that applies on all images but
    whose estimator is undefined on one resample (a dense cell left with a single value, say) is
    NaN in that replicate, with the reason, and logged; the intervals leave it out of that
    replicate's target column."""
    n = len(next(iter(features.values()))) if features else 0
    if head is not None and len(head) != n:
        raise ValueError(f"{model}: the head's probabilities have {len(head)} rows for {n} images")
    index = [None, *resamples(n, n_bootstrap, seed)]
    out = []
    for layer, x in features.items():
        for est in estimators:
            applies = None
            for r, idx in enumerate(tqdm(index, desc=f"{model} {layer} {est}", unit="replicate",
                                         disable=len(index) < 3, leave=False)):
                tg = targets if idx is None else {t: (np.asarray(y)[idx], k) for t, (y, k) in targets.items()}
                xr = x if idx is None else x[idx]
                heads = None if head is None else {model: head if idx is None else np.asarray(head)[idx]}
                kw = dict(options.get(est, {}))
                try:
                    m = transferability_matrix({model: xr}, tg, est, kw, heads=heads, grid=grid,
                                               levels=levels, sources=[model])
                except ValueError as e:
                    if idx is None:
                        raise
                    log.warning("%s %s %s: bootstrap replicate %d undefined: %s", model, layer, est, r, e)
                    m = pd.DataFrame(np.nan, index=[model], columns=list(targets))
                    m.attrs["not_applicable"] = {(model, t): f"undefined on bootstrap replicate {r}: {e}"
                                                 for t in targets}
                why = m.attrs.get("not_applicable", {})
                if idx is None:
                    applies = {t for t in m.columns if (model, t) not in why}
                for t in m.columns:
                    v, reason = float(m.loc[model, t]), why.get((model, t), "")
                    if idx is not None and t in applies and not np.isfinite(v) and not reason:
                        reason = f"undefined on bootstrap replicate {r}"
                        log.warning("%s %s %s, target %s: %s", model, layer, est, t, reason)
                    out.append({"estimator": est, "layer": layer, "replicate": r, "source": model,
                                "target": t, "value": v, "not_applicable": reason})
    return pd.DataFrame(out, columns=list(files.ROW_COLUMNS))


def source_estimates(activations: PathLike, targets_file: PathLike, out: PathLike, model: str,
                     layers: Sequence[str], estimators: Sequence[str],
                     options: Mapping[str, Mapping[str, Any]], *, grid: int, levels: int | None,
                     pca_dim: int | None, n_bootstrap: int = 0, seed: int = 0,
                     head: PathLike | None = None, locking: bool | None = None) -> None:
    """Write one source's estimates for every target of ``targets_file`` (:func:`source_rows`;
    features reduced by PCA on all probe images, before resampling). ``head``: the source's
    head-probability file (:mod:`tasksim.minitaskonomy.heads`), refused unless it was made from
    the targets' probe set (same hash and ids) for ``model``; None for a source without a
    categorical head."""
    info = targets_info(targets_file, locking)
    targets = {t: read_targets(targets_file, t, activations=activations, locking=locking)
               for t in info["tasks"]}
    probs = None
    if head is not None:
        from tasksim.minitaskonomy.heads import read_head_probabilities

        check_same_probe(targets_file, head, locking)
        probs = read_head_probabilities(head, model, locking)
        log.info("%s: categorical head, %d classes", model, probs.shape[1])
    feats = {}
    for layer in layers:
        feats[layer] = reduce_features(hdf5_layer(activations, layer, locking)(), pca_dim)
        log.info("%s %s: features %s", model, layer, feats[layer].shape)
    rows = source_rows(feats, model, targets, estimators, options, grid=grid, levels=levels,
                       n_bootstrap=n_bootstrap, seed=seed, head=probs)
    point = rows[rows["replicate"] == 0]
    n_na = int((point["not_applicable"] != "").sum())
    log.info("%s: %d estimates, %d not applicable, %d bootstrap replicates", model, len(point), n_na,
             n_bootstrap)
    files.write_source_rows(out, rows)


def estimator_matrix(row_files: Sequence[PathLike], targets_file: PathLike, out_h5: PathLike,
                     out_csv: PathLike, estimator: str, layer: str, sources: Sequence[str],
                     options: Mapping[str, Any], locking: bool | None = None) -> None:
    """Gather the source files into the source x target matrix of one estimator and layer."""
    info = targets_info(targets_file, locking)
    rows = [files.read_source_rows(p) for p in row_files]
    matrix, why = files.gather(rows, estimator, layer, sources, list(info["tasks"]))
    boot = files.gather_bootstrap(rows, estimator, layer, sources, list(info["tasks"]))
    for line in files.describe_reasons(why):
        log.info("not applicable: %s", line)
    files.write_matrix(out_h5, out_csv, files.TransferabilityMatrix(
        matrix, estimator, layer, why, info["probe_sha256"], info["n_images"], dict(options), boot))


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


def bootstrap_intervals(bootstrap: np.ndarray, scores: pd.DataFrame, groundtruth: pd.DataFrame, *,
                        own_entry: bool, confidence: float = 0.95) -> dict[str, list[float] | None]:
    """Percentile interval of each ranking measure's target mean over the bootstrap replicates
    ``[B, sources, targets]`` (labelled like ``scores``); the ground truth is fixed (it is measured
    on other images). ``None`` for a measure no replicate could score."""
    from tasksim.taxonomy.uncertainty import percentile_interval

    means = {m: [] for m in scoring.RANKING_MEASURES}
    for b in bootstrap:
        frame = pd.DataFrame(b, index=scores.index, columns=scores.columns)
        per = scoring.ranking_per_target(frame, groundtruth, own_entry=own_entry, baseline="min")
        for m in scoring.RANKING_MEASURES:
            means[m].append(scoring.target_mean(per[m]).value)
    out: dict[str, list[float] | None] = {}
    for m, v in means.items():
        v = np.asarray(v, dtype=float)
        out[m] = list(percentile_interval(v, confidence)) if np.isfinite(v).any() else None
    return out


def score_table(scores: pd.DataFrame, groundtruth: pd.DataFrame, *, n_permutations: int,
                seed: int, bootstrap: np.ndarray | None = None,
                confidence: float = 0.95) -> dict[str, Any]:
    """Ranking measures of a source x target matrix against the ground truth (sources and targets
    both present in the ground truth), with and without each target's own encoder, with
    permutation p-values, bootstrap intervals over the probe images where ``bootstrap`` holds
    the replicates' matrices (``[B, sources, targets]`` in the order of ``scores``); the
    popularity floor's measures alongside."""
    sources = [s for s in scores.index if s in groundtruth.index]
    targets = [t for t in scores.columns if t in groundtruth.columns]
    if len(sources) < 2 or not targets:
        raise ValueError(f"the matrix shares {len(sources)} source(s) and {len(targets)} target(s) "
                         f"with the ground truth; at least 2 sources and 1 target are needed")
    s = scores.loc[sources, targets]
    g = groundtruth.loc[sources, targets]
    if bootstrap is not None:
        rows = [list(scores.index).index(x) for x in sources]
        cols = [list(scores.columns).index(x) for x in targets]
        bootstrap = np.asarray(bootstrap)[:, rows][:, :, cols]
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
        if bootstrap is not None and len(bootstrap):
            out[key]["interval"] = bootstrap_intervals(bootstrap, s, g, own_entry=own, confidence=confidence)
    out["n_bootstrap"] = 0 if bootstrap is None else int(len(bootstrap))
    out["confidence"] = confidence
    return out


def _num(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def transferability_scores(matrix_file: PathLike, groundtruth: pd.DataFrame, out: PathLike, *,
                           n_permutations: int, seed: int, groundtruth_label: str,
                           confidence: float = 0.95) -> None:
    """Score one estimator's matrix (:func:`score_table`, with its bootstrap replicates) and
    write the JSON."""
    m = files.read_matrix(matrix_file)
    table = score_table(m.matrix, groundtruth, n_permutations=n_permutations, seed=seed,
                        bootstrap=m.bootstrap, confidence=confidence)
    table.update({"estimator": m.estimator, "layer": m.layer, "groundtruth": groundtruth_label,
                  "n_images": m.n_images, "n_not_applicable": len(m.not_applicable),
                  "not_applicable": files.describe_reasons(m.not_applicable)})
    write_json(out, table)
