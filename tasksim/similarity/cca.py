"""SVCCA (Raghu et al., NeurIPS 2017) and PWCCA (Morcos et al., NeurIPS 2018).

Pipeline per pair of representations ``A [n, d_a]`` and ``B [n, d_b]`` (``n`` data points):

1. centre every neuron (column) over the data points;
2. SVD; keep the top directions explaining ``keep`` (default 99%) of the variance, or a fixed
   number of directions when ``keep`` is an int -- subject to the cap below;
3. CCA between the reduced sets. With orthonormal bases ``U_a``, ``U_b`` of the kept subspaces
   (``n x k``) the canonical correlations are the singular values of ``U_a^T U_b`` (the
   QR/SVD formulation of Bjoerck & Golub, numerically stable: no covariance is inverted);
4. SVCCA = mean canonical correlation; PWCCA = weighted mean with Morcos et al.'s weights
   ``alpha_i = sum_j |<h_i, x_j>|`` (``h_i`` the orthonormal canonical variates in data space,
   ``x_j`` the centred original neurons of the representation with fewer neurons; when both have
   the same number of neurons the two directions are averaged so the result is symmetric).

Step 2 is done once per model (:func:`reduce_representation`) and reused for every pair
(:func:`svcca_matrix`).

**The N <= D trap.** With ``k_a + k_b >= n`` the two subspaces must intersect and CCA returns
correlations of 1 whatever the data; long before that, sample canonical correlations of
*independent* data are strongly biased upwards (for ``k / n = c`` the squared canonical
correlations of independent Gaussian data follow a Wachter law of mean about ``c``). The kept
dimensions are therefore capped at ``floor(max_dim_ratio * n)`` with ``max_dim_ratio = 0.1`` by
default -- the "at least ten data points per neuron" rule of thumb of the SVCCA authors' tutorial
(google/svcca) -- and every cap is reported through the module logger (warning) and the returned
info dictionary.

**Conv activations** ``[N, C, H, W]`` are turned into data points by :func:`conv_to_points`:
``spatial_points`` (each position an extra data point, ``[N H W, C]``, Raghu et al.'s conv
setting), ``spatial_mean`` (average-pool, ``[N, C]``) or ``flatten`` (``[N, C H W]``, the RSA
view). The caller must record the mode next to the result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

ConvMode = Literal["spatial_points", "spatial_mean", "flatten"]
CONV_MODES: tuple[str, ...] = ("spatial_points", "spatial_mean", "flatten")
DEFAULT_KEEP = 0.99
DEFAULT_MAX_DIM_RATIO = 0.1


def conv_to_points(acts: np.ndarray, mode: ConvMode = "spatial_points") -> np.ndarray:
    """Data-point matrix ``[n_points, n_neurons]`` from activations ``[N, C, H, W]`` (or ``[N, D]``,
    returned unchanged whatever the mode). See the module docstring for the modes."""
    if mode not in CONV_MODES:
        raise ValueError(f"unknown conv mode {mode!r}; choose one of {', '.join(CONV_MODES)}")
    a = np.asarray(acts)
    if a.ndim == 2:
        return a
    if a.ndim != 4:
        raise ValueError(f"expected [N, C, H, W] or [N, D] activations, got shape {a.shape}")
    n, c, h, w = a.shape
    if mode == "spatial_points":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(n * h * w, c)
    if mode == "spatial_mean":
        return a.mean(axis=(2, 3), dtype=np.float64)
    return a.reshape(n, c * h * w)


@dataclass
class ReducedRepresentation:
    """The SVD-reduced representation of one model.

    ``basis`` is an orthonormal ``[n, k]`` basis of the kept directions (left singular vectors);
    ``loadings`` (``basis^T X_centred``, ``[k, d]``) is kept only when PWCCA weights are needed.
    """

    basis: np.ndarray
    n_points: int
    n_neurons: int
    dims_for_keep: int  # directions the keep rule asked for
    kept_dims: int  # after the cap
    cap: int
    capped: bool
    explained_variance: float  # fraction of the variance in the kept directions
    loadings: np.ndarray | None = None

    def info(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "n_points": self.n_points,
            "n_neurons": self.n_neurons,
            "dims_for_keep": self.dims_for_keep,
            "kept_dims": self.kept_dims,
            "cap": self.cap,
            "capped": self.capped,
            "explained_variance": self.explained_variance,
        }


def dimension_cap(n_points: int, max_dim_ratio: float = DEFAULT_MAX_DIM_RATIO) -> int:
    """Largest number of kept directions allowed for ``n_points`` data points (at least 1)."""
    if not 0 < max_dim_ratio <= 1:
        raise ValueError("max_dim_ratio must be in (0, 1]")
    return max(1, int(np.floor(max_dim_ratio * n_points)))


def reduce_representation(
    x: np.ndarray,
    keep: float | int = DEFAULT_KEEP,
    max_dim_ratio: float = DEFAULT_MAX_DIM_RATIO,
    with_loadings: bool = False,
    name: str = "representation",
) -> ReducedRepresentation:
    """Centre ``x [n, d]`` over data points and keep its top singular directions.

    ``keep`` float in (0, 1]: smallest number of directions whose variance fraction reaches it;
    int: that many directions (at most the rank). Then capped at :func:`dimension_cap` (a warning
    is logged when the cap binds). The eigen-decomposition of the smaller of ``X^T X`` / ``X X^T``
    is used (memory ``O(min(n, d)^2)``); the kept basis is re-orthonormalised by QR.
    """
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"expected [n_points, n_neurons], got shape {a.shape}")
    n, d = a.shape
    if n < 2:
        raise ValueError("need at least two data points")
    a = a.astype(np.float64)
    a -= a.mean(axis=0)
    if d <= n:
        evals, evecs = np.linalg.eigh(a.T @ a)  # right singular vectors
    else:
        evals, evecs = np.linalg.eigh(a @ a.T)  # left singular vectors
    evals = np.clip(evals[::-1], 0.0, None)
    evecs = evecs[:, ::-1]
    total = float(evals.sum())
    if not total > 0:
        raise ValueError(f"{name}: all activations are constant over the data points")
    rank = int(np.sum(evals > evals[0] * max(n, d) * np.finfo(np.float64).eps))
    if isinstance(keep, (int, np.integer)) and not isinstance(keep, bool):
        if keep < 1:
            raise ValueError("a fixed number of kept directions must be >= 1")
        want = min(int(keep), rank)
    else:
        if not 0 < float(keep) <= 1:
            raise ValueError("keep must be a variance fraction in (0, 1] or an int")
        frac = np.cumsum(evals) / total
        want = min(int(np.searchsorted(frac, float(keep) - 1e-12) + 1), rank)
    cap = dimension_cap(n, max_dim_ratio)
    k = min(want, cap)
    capped = k < want
    if capped:
        logger.warning(
            "%s: SVCCA kept dimensions capped from %d to %d (n_points=%d, max_dim_ratio=%g); "
            "with too few data points per direction CCA is trivially close to 1",
            name, want, k, n, max_dim_ratio,
        )
    if d <= n:
        basis = a @ evecs[:, :k]
    else:
        basis = evecs[:, :k]
    basis, _ = np.linalg.qr(basis)
    loadings = basis.T @ a if with_loadings else None
    return ReducedRepresentation(
        basis=basis, n_points=n, n_neurons=d, dims_for_keep=want, kept_dims=k, cap=cap,
        capped=capped, explained_variance=float(evals[:k].sum() / total), loadings=loadings,
    )


def canonical_correlations(a: ReducedRepresentation, b: ReducedRepresentation) -> np.ndarray:
    """Canonical correlations (descending, ``min(k_a, k_b)`` of them) of two reduced sets."""
    if a.n_points != b.n_points:
        raise ValueError(f"different numbers of data points: {a.n_points} vs {b.n_points}")
    s = np.linalg.svd(a.basis.T @ b.basis, compute_uv=False)
    return np.clip(s, 0.0, 1.0)


def _pwcca_one_side(a: ReducedRepresentation, b: ReducedRepresentation) -> float:
    """PWCCA with weights from ``a``'s neurons projected on ``a``'s canonical variates."""
    if a.loadings is None:
        raise ValueError("PWCCA needs loadings: reduce with with_loadings=True")
    p, s, _ = np.linalg.svd(a.basis.T @ b.basis, full_matrices=False)
    rho = np.clip(s, 0.0, 1.0)
    # canonical variates h = basis_a p (orthonormal); <h_i, x_j> = (p^T basis_a^T X_a)_ij
    weights = np.abs(p.T @ a.loadings).sum(axis=1)
    if not weights.sum() > 0:
        raise ValueError("PWCCA weights are all zero")
    return float(np.sum(weights / weights.sum() * rho))


def pair_similarity(a: ReducedRepresentation, b: ReducedRepresentation, method: str = "svcca") -> float:
    """SVCCA (mean canonical correlation) or PWCCA of two reduced representations."""
    if method == "svcca":
        return float(np.mean(canonical_correlations(a, b)))
    if method == "pwcca":
        if a.n_neurons < b.n_neurons:
            return _pwcca_one_side(a, b)
        if b.n_neurons < a.n_neurons:
            return _pwcca_one_side(b, a)
        return 0.5 * (_pwcca_one_side(a, b) + _pwcca_one_side(b, a))
    raise ValueError(f"unknown CCA method {method!r}; choose svcca or pwcca")


def svcca(
    x: np.ndarray, y: np.ndarray, keep: float | int = DEFAULT_KEEP,
    max_dim_ratio: float = DEFAULT_MAX_DIM_RATIO, method: str = "svcca",
) -> tuple[float, dict[str, Any]]:
    """SVCCA (or PWCCA with ``method="pwcca"``) of two data-point matrices ``[n, d_x]``,
    ``[n, d_y]``; returns the similarity and an info dict (kept dims, caps)."""
    m, info = svcca_matrix([x, y], keep=keep, max_dim_ratio=max_dim_ratio, method=method)
    return float(m[0, 1]), info


def svcca_matrix(
    reps: Iterable[np.ndarray],
    keep: float | int = DEFAULT_KEEP,
    max_dim_ratio: float = DEFAULT_MAX_DIM_RATIO,
    method: str = "svcca",
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``[M, M]`` SVCCA / PWCCA matrix of ``M`` data-point matrices ``[n, d_m]`` (use
    :func:`conv_to_points` first for conv maps). One reduction per model, reused for all pairs;
    ``reps`` may be a generator, so only one model's full representation is in memory at a time
    (give ``names`` then).

    Returns the symmetric matrix (unit diagonal) and ``info`` with ``method``, ``keep``,
    ``max_dim_ratio``, ``capped`` (any model capped) and per-model ``models`` summaries.
    """
    if method not in ("svcca", "pwcca"):
        raise ValueError(f"unknown CCA method {method!r}; choose svcca or pwcca")
    if names is None:
        reps = list(reps)
    labels = list(names) if names is not None else [f"model[{i}]" for i in range(len(reps))]  # type: ignore[arg-type]
    reduced = [
        reduce_representation(r, keep, max_dim_ratio, with_loadings=(method == "pwcca"), name=lab)
        for r, lab in zip(reps, labels, strict=True)
    ]
    out, info = matrix_from_reduced(reduced, method, labels)
    info.update(keep=keep, max_dim_ratio=max_dim_ratio)
    return out, info


def matrix_from_reduced(
    reduced: Sequence[ReducedRepresentation], method: str = "svcca", names: Sequence[str] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """``[M, M]`` SVCCA / PWCCA matrix from already reduced representations (and info)."""
    labels = list(names) if names is not None else [f"model[{i}]" for i in range(len(reduced))]
    m = len(reduced)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = pair_similarity(reduced[i], reduced[j], method)
    info: dict[str, Any] = {
        "method": method,
        "capped": any(r.capped for r in reduced),
        "models": [dict(r.info(), name=lab) for r, lab in zip(reduced, labels, strict=True)],
    }
    return out, info
