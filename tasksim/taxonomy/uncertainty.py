"""Uncertainty of agreement scores: bootstrap over probe images, permutation over task labels.

* Bootstrap (:func:`bootstrap_score`): resample the N probe images with replacement, rebuild the
  task x task similarity matrix from stored per-image quantities, rescore, and report the
  percentile interval (default 95%). The caller supplies ``similarity_fn(index) -> DataFrame``;
  two ready-made ones rebuild the paper methods cheaply:

  - RSA (:func:`rsa_similarity`, :func:`rsa_similarity_fn`): from stored RDMs ``[M, N, N]``, the
    resampled RDM of model m is ``rdm[m][index][:, index]``. **Duplicates**: an image drawn twice
    gives a pair of copies at distance 0 that is not a real comparison. Default
    ``duplicates="drop"``: the upper-triangle pairs (a, b) with ``index[a] == index[b]`` are
    dropped before the Spearman correlation (as rsatoolbox ignores comparisons of a pattern with
    its own copy); pairs of distinct images are kept with their multiplicity. Consequence (tested):
    resampling every image exactly twice reproduces the full-sample similarity exactly.
    ``duplicates="keep"`` uses the resampled RDM as is (zeros included).
  - Attribution (:func:`attribution_similarity`, :func:`attribution_similarity_fn`): mean over the
    resampled images of the stored per-image cosines ``[M, M, N]``.

* Permutation (:func:`permutation_test`): permute the similarity matrix's rows and columns jointly
  (i.e. shuffle which task each model is called), rescore; ``p = (1 + #{null >= observed}) /
  (1 + n_perm)``.

Randomness comes only from seeded :class:`numpy.random.Generator` objects (``seed`` may be an int
or a Generator).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BootstrapResult", "PermutationResult", "bootstrap_indices", "percentile_interval",
    "bootstrap", "bootstrap_score", "rsa_similarity", "rsa_similarity_fn",
    "attribution_similarity", "attribution_similarity_fn", "permutation_test", "format_p_value",
]

Seed = int | np.random.Generator


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimate (all images), percentile interval and the bootstrap samples."""

    estimate: float
    low: float
    high: float
    level: float
    samples: np.ndarray


@dataclass(frozen=True)
class PermutationResult:
    """Observed score, permutation p-value and the null distribution."""

    observed: float
    p_value: float
    null: np.ndarray


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def bootstrap_indices(n_images: int, n_boot: int, seed: Seed = 0) -> np.ndarray:
    """``[n_boot, n_images]`` int array of image indices drawn with replacement."""
    if n_images < 2 or n_boot < 1:
        raise ValueError("need n_images >= 2 and n_boot >= 1")
    return _rng(seed).integers(0, n_images, size=(n_boot, n_images))


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed percentile interval of the finite bootstrap samples."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite bootstrap samples")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(s, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap(statistic: Callable[[np.ndarray], float], n_images: int, n_boot: int = 1000,
              seed: Seed = 0, level: float = 0.95) -> BootstrapResult:
    """Percentile bootstrap of ``statistic(index)`` over images; the estimate uses ``arange(n_images)``."""
    idx = bootstrap_indices(n_images, n_boot, seed)
    samples = np.array([statistic(i) for i in idx], dtype=float)
    low, high = percentile_interval(samples, level)
    return BootstrapResult(float(statistic(np.arange(n_images))), low, high, level, samples)


def bootstrap_score(similarity_fn: Callable[[np.ndarray], pd.DataFrame],
                    score_fn: Callable[[pd.DataFrame], float], n_images: int,
                    n_boot: int = 1000, seed: Seed = 0, level: float = 0.95) -> BootstrapResult:
    """Bootstrap interval of ``score_fn(similarity_fn(index))`` over resampled probe images.

    E.g. ``bootstrap_score(rsa_similarity_fn(rdms, tasks), lambda s: dds_score(s, gt), N)``.
    """
    return bootstrap(lambda i: float(score_fn(similarity_fn(i))), n_images, n_boot, seed, level)


def _pair_vectors(rdms: np.ndarray, index: np.ndarray, duplicates: str) -> np.ndarray:
    n = index.size
    a, b = np.triu_indices(n, 1)
    if duplicates == "drop":
        keep = index[a] != index[b]
        a, b = a[keep], b[keep]
    elif duplicates != "keep":
        raise ValueError(f"duplicates must be 'drop' or 'keep', got {duplicates!r}")
    return rdms[:, index[a], index[b]]


def rsa_similarity(rdms: np.ndarray, index: np.ndarray | None = None,
                   duplicates: str = "drop", comparison: str = "spearman") -> np.ndarray:
    """``[M, M]`` RSA similarity of M stored RDMs on (resampled) images: the analysis's own
    ``comparison`` (:func:`tasksim.similarity.rsa.compare_triangles`) of their upper triangles.

    ``rdms``: ``[M, N, N]`` stored RDMs. ``index``: resampled image indices (default: all
    images once). See the module docstring for ``duplicates``.
    """
    from tasksim.similarity.rsa import compare_triangles

    rdms = np.asarray(rdms)
    if rdms.ndim != 3 or rdms.shape[1] != rdms.shape[2]:
        raise ValueError(f"rdms must be [M, N, N], got {rdms.shape}")
    index = np.arange(rdms.shape[1]) if index is None else np.asarray(index, dtype=int)
    v = _pair_vectors(rdms, index, duplicates)
    if v.shape[1] < 3:
        raise ValueError("fewer than 3 image pairs left")
    return compare_triangles(v, comparison)  # type: ignore[arg-type]


def rsa_similarity_fn(rdms: np.ndarray, labels: Sequence[str], duplicates: str = "drop",
                      comparison: str = "spearman") -> Callable[[np.ndarray], pd.DataFrame]:
    """``index -> DataFrame`` (labels x labels) of :func:`rsa_similarity`, for :func:`bootstrap_score`."""
    labels = list(labels)
    return lambda index: pd.DataFrame(rsa_similarity(rdms, index, duplicates, comparison),
                                      index=labels, columns=labels)


def attribution_similarity(cosines: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """``[M, M]`` attribution similarity: mean over (resampled) images of per-image cosines ``[M, M, N]``."""
    cosines = np.asarray(cosines, dtype=float)
    if cosines.ndim != 3 or cosines.shape[0] != cosines.shape[1]:
        raise ValueError(f"cosines must be [M, M, N], got {cosines.shape}")
    if index is None:
        return cosines.mean(axis=2)
    return cosines[:, :, np.asarray(index, dtype=int)].mean(axis=2)


def attribution_similarity_fn(cosines: np.ndarray,
                              labels: Sequence[str]) -> Callable[[np.ndarray], pd.DataFrame]:
    """``index -> DataFrame`` of :func:`attribution_similarity`, for :func:`bootstrap_score`."""
    labels = list(labels)
    return lambda index: pd.DataFrame(attribution_similarity(cosines, index),
                                      index=labels, columns=labels)


def permutation_test(similarity: pd.DataFrame, score_fn: Callable[[pd.DataFrame], float],
                     n_perm: int = 1000, seed: Seed = 0) -> PermutationResult:
    """Permutation p-value of ``score_fn(similarity)`` under shuffled task labels.

    Each permutation reorders rows and columns jointly (``values[p][:, p]``) and keeps the labels,
    so every model is scored as if it were another task. ``p = (1 + #{null >= observed}) /
    (1 + n_perm)`` (one-sided: higher score = better agreement).
    """
    if list(similarity.index) != list(similarity.columns):
        raise ValueError("similarity must be square with identical row and column labels")
    rng = _rng(seed)
    values = similarity.to_numpy()
    labels = similarity.index
    observed = float(score_fn(similarity))
    null = np.empty(n_perm)
    for k in range(n_perm):
        p = rng.permutation(len(labels))
        null[k] = score_fn(pd.DataFrame(values[np.ix_(p, p)], index=labels, columns=labels))
    p_value = (1 + int(np.sum(null >= observed))) / (1 + n_perm)
    return PermutationResult(observed, p_value, null)


def format_p_value(p: float | None, n_permutations: int) -> str:
    """A permutation p-value as text, at the resolution of the test.

    With ``n`` permutations the smallest attainable value is ``1 / (n + 1)``: an observed score
    above every permuted one reads ``p < 1/n`` (``p < 0.001`` for 1000), not ``p = 0.000999``.
    """
    if p is None or not np.isfinite(p) or n_permutations <= 0:
        return ""
    if p <= 1.0 / (n_permutations + 1) + 1e-12:
        return f"p < {1.0 / n_permutations:.2g}"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"
