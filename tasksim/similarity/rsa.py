"""Representational similarity analysis (Dwivedi & Roig, CVPR 2019).

Per model and layer an ``N x N`` representational dissimilarity matrix (RDM) is computed from the
features ``X [N, D]`` of ``N`` probe images; two models are compared by correlating the strict
upper triangles of their RDMs (Spearman by default).

RDMs are computed from Gram statistics so that a layer can be **streamed in column blocks**
``X[:, a:b]`` (e.g. float16 read from HDF5) without holding a float copy of the whole layer:

* :func:`accumulate_gram` consumes an iterable of column blocks and returns :class:`GramStats`
  (Gram matrix ``G = Xn Xn^T`` of the normalised features, row sums ``s = Xn 1``, ``D``);
* :func:`rdm_from_gram` turns these statistics into an RDM for one distance.

Feature normalisation is applied *inside each block*: blocks hold full columns (all ``N``
images), so per-feature means and standard deviations are exact within the block. Centring every
feature over images is the same as double-centring the Gram matrix (``H G H``), but centring the
block before the product avoids the catastrophic cancellation of the latter.

Distances between the rows ``x_i`` of the normalised features (``D`` features):

* ``pearson``: ``1 - r_ij`` with ``r`` the Pearson correlation across features,
  ``cov_ij = G_ij - s_i s_j / D``;
* ``euclidean``: ``sqrt(G_ii + G_jj - 2 G_ij)`` (clipped at 0);
* ``cosine``: ``1 - G_ij / sqrt(G_ii G_jj)``.

**Degenerate rows.** The Pearson distance is undefined for an image whose (normalised) feature
vector is constant across features, and the cosine distance for an all-zero vector. Instead of
returning NaN, :func:`rdm_from_gram` raises :class:`DegenerateFeaturesError` (a ``ValueError``)
naming the offending image rows. A row counts as constant when its variance across features is
at most ``1e-6`` times its mean square (the float32 Gram products carry a relative error of about
``1e-7``, so a smaller threshold would not detect exactly constant rows reliably).

**Constant features under z-scoring.** A feature with zero variance over images cannot be scaled;
it is set to zero (it carries no information) and counted in ``GramStats.n_constant_features``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats

Normalization = Literal["none", "center", "zscore"]
Distance = Literal["pearson", "euclidean", "cosine"]
CompareMethod = Literal["spearman", "pearson", "kendall_taua"]

NORMALIZATIONS: tuple[str, ...] = ("none", "center", "zscore")
DISTANCES: tuple[str, ...] = ("pearson", "euclidean", "cosine")
COMPARE_METHODS: tuple[str, ...] = ("spearman", "pearson", "kendall_taua")

#: Relative threshold below which a row's variance (or squared norm) counts as zero.
DEGENERATE_RTOL = 1e-6
#: Default size of one float32 column block when streaming an in-memory array (bytes); large
#: blocks amortise the per-block overhead, the block is the only float copy held.
DEFAULT_BLOCK_BYTES = 256 * 2**20


class DegenerateFeaturesError(ValueError):
    """Some images have constant (Pearson) or all-zero (cosine) feature vectors."""


@dataclass
class GramStats:
    """Sufficient statistics of the normalised features ``Xn [N, D]`` for every RDM distance.

    ``gram`` and ``row_sums`` describe ``Xn - shift`` (``shift`` is a scalar, non-zero only for
    ``normalization="none"``, where it removes the common offset of the features before the
    float32 products; Pearson and Euclidean distances are invariant to it, cosine undoes it).
    """

    gram: np.ndarray  # [N, N] float64
    row_sums: np.ndarray  # [N] float64
    n_features: int
    normalization: str
    shift: float = 0.0
    n_constant_features: int = 0

    @property
    def n_images(self) -> int:
        """Number of images (rows)."""
        return int(self.gram.shape[0])

    def raw_gram(self) -> np.ndarray:
        """Gram matrix of the normalised features themselves (the shift undone), float64."""
        c = self.shift
        if c == 0.0:
            return self.gram
        s = self.row_sums
        return self.gram + c * (s[:, None] + s[None, :]) + c * c * self.n_features


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")


def _compute_dtype(dtype: np.dtype, compute_dtype: str | None = None) -> np.dtype:
    """``compute_dtype`` if given, else float64 for float64 input and float32 otherwise."""
    if compute_dtype is not None:
        if compute_dtype not in ("float32", "float64"):
            raise ValueError("compute_dtype must be 'float32', 'float64' or None")
        return np.dtype(compute_dtype)
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def cast_into(out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``out[...] = x`` with dtype conversion; float16 input is converted by torch (vectorised,
    threaded: ~25x faster than numpy's float16 conversion on an AVX-512 CPU)."""
    if x.dtype == np.float16 and out.dtype in (np.float32, np.float64) and x.size:
        import torch

        torch.from_numpy(out).copy_(torch.from_numpy(np.asarray(x)))
    else:
        np.copyto(out, x, casting="unsafe")
    return out


def normalize_block(
    block: np.ndarray, normalization: Normalization = "center", compute_dtype: str | None = None,
    buffer: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Normalise a block of full feature columns ``[N, b]`` over images (axis 0).

    Returns the normalised block (in ``compute_dtype``; default float32, float64 for float64
    input) and the number of constant columns (zero variance over images) set to zero under
    ``zscore``. ``buffer``: a flat array of that dtype with at least ``N * b`` elements to write
    the result into (reused across blocks, it saves allocating and page-faulting a fresh copy
    per block); the result is then a view of it.
    """
    _check_choice(normalization, NORMALIZATIONS, "normalization")
    x = np.asarray(block)
    if x.ndim != 2:
        raise ValueError(f"a column block must be 2-D [N, b], got shape {x.shape}")
    dtype = _compute_dtype(x.dtype, compute_dtype)
    if buffer is not None and buffer.dtype == dtype and buffer.ndim == 1 and buffer.size >= x.size:
        out = buffer[:x.size].reshape(x.shape)
    else:
        out = np.empty(x.shape, dtype=dtype)
    cast_into(out, x)
    x = out
    if normalization == "none":
        return x, 0
    mean = x.mean(axis=0, dtype=np.float64)
    x -= mean.astype(x.dtype)
    if normalization == "center":
        return x, 0
    std = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=0))
    constant = std <= DEGENERATE_RTOL * np.maximum(np.abs(mean), 1.0)
    scale = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, std))
    x *= scale.astype(x.dtype)
    return x, int(constant.sum())


def accumulate_gram(
    blocks: Iterable[np.ndarray], normalization: Normalization = "center", compute_dtype: str | None = None
) -> GramStats:
    """Accumulate :class:`GramStats` from column blocks ``X[:, a:b]`` of one layer.

    Each block holds all ``N`` rows (images) and a contiguous or arbitrary subset of feature
    columns; together the blocks must cover every feature exactly once (order is irrelevant).
    Any dtype is accepted (float16 from HDF5 included): each block is normalised in float32
    (float64 input stays float64), its Gram product is taken in that precision and accumulated
    into float64. Cost ``O(N^2 D)``; memory ``O(N^2 + N b)``.

    Precision: with float32 products the Pearson correlation of rows ``i, j`` carries an absolute
    error of about ``1e-7 * sqrt(m_i m_j / (v_i v_j))`` (``m`` mean square, ``v`` variance of a
    row across features): negligible unless an image's features are nearly constant. Pass
    ``compute_dtype="float64"`` for exact-to-1e-12 results at 2-3x the cost.
    """
    _check_choice(normalization, NORMALIZATIONS, "normalization")
    gram: np.ndarray | None = None
    row_sums: np.ndarray | None = None
    n_features = 0
    n_constant = 0
    shift: float | None = None
    buffer: np.ndarray | None = None
    for block in blocks:
        dtype = _compute_dtype(np.asarray(block).dtype, compute_dtype)
        if buffer is None or buffer.dtype != dtype or buffer.size < np.asarray(block).size:
            buffer = np.empty(np.asarray(block).size, dtype=dtype)
        x, nc = normalize_block(block, normalization, compute_dtype, buffer)
        if x.shape[1] == 0:
            continue
        if gram is None:
            gram = np.zeros((x.shape[0], x.shape[0]), dtype=np.float64)
            row_sums = np.zeros(x.shape[0], dtype=np.float64)
            shift = float(x.mean(dtype=np.float64)) if normalization == "none" else 0.0
        elif x.shape[0] != gram.shape[0]:
            raise ValueError(f"blocks disagree on the number of images: {x.shape[0]} != {gram.shape[0]}")
        if shift:
            x -= x.dtype.type(shift)
        gram += x @ x.T  # numpy dispatches X @ X.T to BLAS syrk (half the flops)
        row_sums += x.sum(axis=1, dtype=np.float64)
        n_features += x.shape[1]
        n_constant += nc
    if gram is None or row_sums is None or shift is None:
        raise ValueError("no feature columns: the block iterable was empty")
    gram = (gram + gram.T) / 2.0
    return GramStats(gram, row_sums, n_features, normalization, shift, n_constant)


def _degenerate_rows(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Rows whose variance / squared norm is at most DEGENERATE_RTOL of ``scale`` (or <= 0)."""
    return np.flatnonzero((values <= 0) | (values <= DEGENERATE_RTOL * np.abs(scale)))


def rdm_from_gram(stats: GramStats, distance: Distance = "pearson") -> np.ndarray:
    """Finalise :class:`GramStats` into an ``N x N`` RDM (float64, symmetric, zero diagonal).

    Raises :class:`DegenerateFeaturesError` for constant rows (``pearson``) or all-zero rows
    (``cosine``); see the module docstring.
    """
    _check_choice(distance, DISTANCES, "distance")
    g = stats.gram
    d = stats.n_features
    if distance == "pearson":
        s = stats.row_sums
        cov = g - np.outer(s, s) / d
        var = np.diag(cov).copy()
        bad = _degenerate_rows(var, np.diag(g))
        if bad.size:
            raise DegenerateFeaturesError(
                f"Pearson RDM undefined: image rows {bad[:10].tolist()}"
                f"{' ...' if bad.size > 10 else ''} ({bad.size} in all) have constant feature vectors "
                f"after {stats.normalization!r} normalisation"
            )
        inv = 1.0 / np.sqrt(var)
        out = 1.0 - cov * inv[:, None] * inv[None, :]
    elif distance == "cosine":
        graw = stats.raw_gram()
        sq = np.diag(graw).copy()
        # rounding error of sq is relative to the terms that cancelled when undoing the shift
        bad = _degenerate_rows(sq, np.diag(g) + stats.shift**2 * d)
        if bad.size:
            raise DegenerateFeaturesError(
                f"cosine RDM undefined: image rows {bad[:10].tolist()}"
                f"{' ...' if bad.size > 10 else ''} ({bad.size} in all) have all-zero feature vectors "
                f"after {stats.normalization!r} normalisation"
            )
        inv = 1.0 / np.sqrt(sq)
        out = 1.0 - graw * inv[:, None] * inv[None, :]
    else:  # euclidean (invariant to the scalar shift)
        sq = np.diag(g)
        out = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * g, 0.0))
    out = (out + out.T) / 2.0
    np.fill_diagonal(out, 0.0)
    return out


def default_block_columns(n_images: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Columns per block so that one float32 block ``[n_images, b]`` takes about ``block_bytes``."""
    return max(1, block_bytes // (4 * max(1, n_images)))


def iter_column_blocks(x: np.ndarray, block_columns: int | None = None) -> Iterator[np.ndarray]:
    """Yield column blocks ``[N, <=block_columns]`` of ``x`` flattened to ``[N, D]`` (views).

    ``block_columns=None``: :func:`default_block_columns` (about 256 MiB of float32 per block).
    """
    a = np.asarray(x)
    a = a.reshape(a.shape[0], -1)
    if block_columns is None:
        block_columns = default_block_columns(a.shape[0])
    if block_columns < 1:
        raise ValueError("block_columns must be >= 1")
    for start in range(0, a.shape[1], block_columns):
        yield a[:, start:start + block_columns]


def rdm_streamed(
    blocks: Iterable[np.ndarray], normalization: Normalization = "center", distance: Distance = "pearson",
    compute_dtype: str | None = None,
) -> np.ndarray:
    """RDM of a layer given as an iterable of column blocks (see :func:`accumulate_gram`)."""
    return rdm_from_gram(accumulate_gram(blocks, normalization, compute_dtype), distance)


def rdm(
    x: np.ndarray,
    normalization: Normalization = "center",
    distance: Distance = "pearson",
    block_columns: int | None = None,
    compute_dtype: str | None = None,
) -> np.ndarray:
    """RDM ``[N, N]`` of in-memory features ``x [N, ...]`` (flattened per image).

    Defaults are the paper's: centre each feature over images, ``1 - Pearson`` across features.
    """
    return rdm_streamed(iter_column_blocks(x, block_columns), normalization, distance, compute_dtype)


# --------------------------------------------------------------------------------------------
# comparing RDMs


def upper_triangle(m: np.ndarray) -> np.ndarray:
    """Strict upper triangle of a square matrix as a vector (row-major order)."""
    m = np.asarray(m)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {m.shape}")
    return m[np.triu_indices(m.shape[0], k=1)]


def _tie_pairs(v: np.ndarray) -> int:
    _, counts = np.unique(v, return_counts=True)
    return int(np.sum(counts * (counts - 1) // 2))


def kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a ``(n_concordant - n_discordant) / (n (n - 1) / 2)`` (ties count as 0).

    Computed in ``O(n log n)``: scipy's tau-b uses Knight's merge-sort algorithm; since
    ``tau_b = (C - D) / sqrt((n0 - t_x) (n0 - t_y))`` with ``n0 = n (n - 1) / 2`` and ``t_x``,
    ``t_y`` the numbers of pairs tied in ``x`` / ``y``, ``C - D`` and hence tau-a follow exactly.
    A vector that is constant has tau-a 0.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError("x and y must have the same length")
    n = x.size
    if n < 2:
        raise ValueError("need at least two values")
    n0 = n * (n - 1) // 2
    nx = n0 - _tie_pairs(x)
    ny = n0 - _tie_pairs(y)
    if nx == 0 or ny == 0:
        return 0.0
    tau_b = scipy.stats.kendalltau(x, y, variant="b").statistic
    return float(tau_b * np.sqrt(float(nx) * float(ny)) / n0)


def _standardized_rows(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", v, v))
    bad = np.flatnonzero(norms <= 1e-12 * np.maximum(1.0, np.abs(v).max(axis=1)))
    if bad.size:
        raise ValueError(
            f"RDM(s) {bad.tolist()} have constant upper triangles; their correlation is undefined"
        )
    return v / norms[:, None]


def _triangles(rdms: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    return np.stack([upper_triangle(np.asarray(r, dtype=np.float64)) for r in rdms])


def compare_triangles(v: np.ndarray, method: CompareMethod = "spearman") -> np.ndarray:
    """``[M, M]`` correlations of M RDM triangles given as rows of ``v [M, P]``.

    ``spearman`` / ``pearson``: each row is ranked (Spearman) and standardised once, then all
    correlations come from one matrix product (``O(M P log P + M^2 P)``). ``kendall_taua``:
    ``O(M^2 P log P)`` with :func:`kendall_tau_a`. Symmetric with an exact unit diagonal.
    """
    _check_choice(method, COMPARE_METHODS, "RDM comparison method")
    v = np.asarray(v, dtype=np.float64)
    m = v.shape[0]
    if method == "kendall_taua":
        out = np.eye(m)
        for i in range(m):
            for j in range(i + 1, m):
                out[i, j] = out[j, i] = kendall_tau_a(v[i], v[j])
        return out
    if method == "spearman":
        v = scipy.stats.rankdata(v, axis=1)
    z = _standardized_rows(v)
    out = np.clip(z @ z.T, -1.0, 1.0)
    out = (out + out.T) / 2.0
    np.fill_diagonal(out, 1.0)
    return out


def rsa_matrix(rdms: Sequence[np.ndarray] | np.ndarray, method: CompareMethod = "spearman") -> np.ndarray:
    """Model x model similarity ``[M, M]`` of ``M`` RDMs (each ``[N, N]``): the correlation of
    their strict upper triangles (:func:`compare_triangles`)."""
    return compare_triangles(_triangles(rdms), method)


def compare_rdms(a: np.ndarray, b: np.ndarray, method: CompareMethod = "spearman") -> float:
    """Similarity of two RDMs: correlation of their strict upper triangles (Spearman default)."""
    return float(rsa_matrix([a, b], method)[0, 1])
