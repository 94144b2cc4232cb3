"""Centred kernel alignment (Kornblith et al., ICML 2019) from Gram / kernel matrices.

Everything works on ``N x N`` kernel matrices so that ``M`` models share the cost: one Gram per
model (:func:`gram_linear`, :func:`gram_rbf`, or :func:`gram_rbf_from_linear` reusing a linear
Gram), centred once, then all ``M x M`` alignments from one matrix product
(:func:`cka_matrix`).

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with

* the biased estimator ``HSIC = tr(K H L H) / (N - 1)^2``, ``H = I - 11^T / N`` (default), or
* the unbiased estimator of Song et al. (2012) (``debiased=True``, as in Nguyen et al. 2021 and
  the DDS paper), computed in ``O(N^2)`` by the centring of :func:`center_gram`.

The normalising constants cancel in the ratio, so only the centred Grams' inner products matter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _flat(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim < 2:
        raise ValueError(f"features must be [N, ...] with at least 2 dimensions, got {a.shape}")
    a = a.reshape(a.shape[0], -1)
    return a.astype(np.float64) if a.dtype != np.float64 else a


def gram_linear(x: np.ndarray) -> np.ndarray:
    """Linear kernel ``X X^T`` (float64, ``[N, N]``) of features ``x [N, ...]``."""
    a = _flat(x)
    g = a @ a.T
    return (g + g.T) / 2.0


def gram_rbf_from_linear(gram: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """RBF kernel from a linear Gram matrix of the same features (any centring or offset of the
    features gives the same result, distances are invariant to it).

    ``K_ij = exp(-d_ij^2 / (2 sigma^2))`` with ``sigma = threshold * median_{i<j} d_ij``, the median
    Euclidean distance over distinct pairs (Kornblith et al.'s code takes the median of squared
    distances over all ``N^2`` entries, diagonal zeros included; the difference is small and the
    definition here is the one stated in the papers). Raises ``ValueError`` if that median is 0.
    """
    if threshold <= 0:
        raise ValueError("threshold must be > 0")
    g = np.asarray(gram, dtype=np.float64)
    sq = np.diag(g)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * g, 0.0)
    np.fill_diagonal(d2, 0.0)
    med = float(np.median(np.sqrt(d2[np.triu_indices(g.shape[0], k=1)])))
    if not med > 0:
        raise ValueError("median pairwise distance is 0: the RBF bandwidth is undefined")
    sigma = threshold * med
    return np.exp(-d2 / (2.0 * sigma * sigma))


def gram_rbf(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """RBF kernel of features ``x [N, ...]`` with bandwidth ``threshold x`` median pairwise
    Euclidean distance (per representation); see :func:`gram_rbf_from_linear`."""
    a = _flat(x)
    a = a - a.mean(axis=0)  # distances are unchanged; avoids cancellation in |x|^2 - 2 x.y
    return gram_rbf_from_linear(gram_linear(a), threshold)


def center_gram(gram: np.ndarray, debiased: bool = False) -> np.ndarray:
    """Centre a symmetric kernel matrix for HSIC.

    ``debiased=False``: ``H K H``. ``debiased=True``: the U-statistic centring of Song et al.
    (2012) (zero diagonal, column means over ``N - 2``), so that the Frobenius inner product of two
    centred matrices equals ``N (N - 3)`` times the unbiased HSIC estimate (needs ``N > 3``).
    """
    g = np.array(gram, dtype=np.float64, copy=True)
    n = g.shape[0]
    if g.ndim != 2 or n != g.shape[1]:
        raise ValueError(f"expected a square kernel matrix, got shape {g.shape}")
    if not np.allclose(g, g.T, rtol=1e-7, atol=1e-10 * max(1.0, float(np.abs(g).max(initial=0.0)))):
        raise ValueError("kernel matrix is not symmetric")
    if debiased:
        if n <= 3:
            raise ValueError("the debiased HSIC estimator needs N > 3")
        np.fill_diagonal(g, 0.0)
        means = g.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        g -= means[:, None]
        g -= means[None, :]
        np.fill_diagonal(g, 0.0)
    else:
        means = g.mean(axis=0)
        g -= means[:, None]
        g -= means[None, :]
        g += means.mean()
    return g


def _self_norm(v: float, what: str) -> float:
    if not v > 0:
        raise ValueError(f"HSIC({what}, {what}) = {v:.3g} <= 0: CKA is undefined (constant kernel, "
                         "or a negative unbiased estimate for tiny N)")
    return v


def cka(k: np.ndarray, l: np.ndarray, debiased: bool = False) -> float:  # noqa: E741
    """CKA of two kernel matrices ``[N, N]`` (same images, same order)."""
    if np.shape(k) != np.shape(l):
        raise ValueError(f"kernel shapes differ: {np.shape(k)} vs {np.shape(l)}")
    kc = center_gram(k, debiased)
    lc = center_gram(l, debiased)
    kl = float(np.vdot(kc, lc))
    kk = _self_norm(float(np.vdot(kc, kc)), "K")
    ll = _self_norm(float(np.vdot(lc, lc)), "L")
    return kl / np.sqrt(kk * ll)


def cka_matrix(grams: Sequence[np.ndarray] | np.ndarray, debiased: bool = False,
               names: Sequence[str] | None = None) -> np.ndarray:
    """``[M, M]`` CKA between ``M`` kernel matrices; each is centred once and all inner products
    come from one ``[M, N^2] x [N^2, M]`` product. Symmetric with an exact unit diagonal.

    A kernel with ``HSIC(K, K) <= 0`` raises ``ValueError`` naming every such model (``names``,
    else ``K[i]``)."""
    flat = np.stack([center_gram(g, debiased).ravel() for g in grams])
    p = flat @ flat.T
    labels = list(names) if names is not None else [f"K[{i}]" for i in range(len(flat))]
    bad = [f"{labels[i]} ({float(v):.3g})" for i, v in enumerate(np.diag(p)) if not float(v) > 0]
    if bad:
        raise ValueError(f"HSIC(K, K) <= 0 for models {', '.join(bad)}: CKA is undefined for them "
                         "(a constant layer over the probe images, or a negative unbiased estimate "
                         "for tiny N)")
    diag = np.array([_self_norm(float(v), labels[i]) for i, v in enumerate(np.diag(p))])
    inv = 1.0 / np.sqrt(diag)
    out = p * inv[:, None] * inv[None, :]
    out = np.clip((out + out.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(out, 1.0)
    return out
