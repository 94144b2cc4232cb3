"""Label-based transferability estimators: how well a frozen representation suits a labelled task.

Every estimator reads a representation of ``N`` target examples and the target labels and
returns one number, higher meaning better expected transfer::

    f(features [N, D], labels) -> float

Labels are read by their dtype (:func:`label_kind`): integer (or boolean) labels ``[N]`` are
class targets, floating-point labels ``[N]`` or ``[N, K]`` are regression targets. ``leep``
takes the source classifier's probabilities ``[N, C_s]`` and ``nce`` its predicted classes
``[N]`` in place of features.

Which estimator applies to which kind of target, what it reads and its orientation are declared
once, in :data:`ESTIMATORS`; :func:`applicable` and :func:`estimate` read that table. Calling an
estimator on a kind of target it does not apply to raises :class:`NotApplicable`;
:func:`estimate` returns the :class:`NotApplicable` instance instead, so a caller can report
"not applicable" in place of a number.

Work that depends on the representation only (a covariance pseudo-inverse, an SVD, a PCA, a
feature dissimilarity matrix) is exposed as ``prepare_*`` functions; pass their result as
``prepared=`` to score many targets against one source without repeating it.

Dense targets (per-pixel label maps) are reduced to per-cell targets on a coarse grid by
:func:`dense_to_cells`, and an estimator is averaged over the cells by :func:`mean_over_cells`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

LabelKind = Literal["class", "regression"]
InputKind = Literal["features", "source_probabilities", "source_predictions"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

LABEL_KINDS: tuple[LabelKind, ...] = ("class", "regression")


class NotApplicable(Exception):
    """An estimator was asked about a kind of target it is not defined for.

    Raised by the estimators themselves; :func:`estimate` returns the instance instead of a
    number. ``str(instance)`` explains the mismatch; ``name`` and ``label_kind`` name it.
    """

    def __init__(self, name: str, label_kind: str, detail: str = ""):
        self.name = name
        self.label_kind = label_kind
        kinds = " and ".join(ESTIMATORS[name].label_kinds) if name in ESTIMATORS else "?"
        message = f"{name} is not applicable to {label_kind} targets (it applies to {kinds} targets)"
        super().__init__(message + (f"; {detail}" if detail else ""))


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def label_kind(labels: ArrayLike) -> LabelKind:
    """``"class"`` for integer or boolean labels ``[N]``, ``"regression"`` for float ``[N]``/``[N, K]``.

    The dtype decides: float labels are regression targets even when their values are whole
    numbers; pass an integer array for class targets.
    """
    y = np.asarray(labels)
    if y.dtype.kind in "biu":
        if y.ndim != 1:
            raise ValueError(f"class labels must be one-dimensional [N], got shape {y.shape}")
        return "class"
    if y.dtype.kind == "f":
        if y.ndim not in (1, 2):
            raise ValueError(f"regression targets must be [N] or [N, K], got shape {y.shape}")
        return "regression"
    raise ValueError(f"labels must be integer (classes) or float (regression), got dtype {y.dtype}")


def _finite_2d(x: ArrayLike, what: str, min_rows: int = 2) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array [N, D], got shape {a.shape}")
    if a.shape[0] < min_rows:
        raise ValueError(f"{what} need at least {min_rows} rows, got {a.shape[0]}")
    if a.shape[1] < 1:
        raise ValueError(f"{what} have no columns (shape {a.shape})")
    bad = ~np.isfinite(a)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{what} contain NaN or infinite values ({int(bad.sum())} entries, first at "
                         f"row {i}, column {j})")
    return a


def _same_n(n: int, labels_n: int) -> None:
    if labels_n != n:
        raise ValueError(f"labels have {labels_n} rows but the inputs have {n}")


def _class_labels(name: str, labels: ArrayLike, n: int) -> tuple[IntArray, int]:
    """Labels as codes ``0..C-1`` and ``C``; NotApplicable for regression targets."""
    kind = label_kind(labels)
    if kind not in ESTIMATORS[name].label_kinds:
        raise NotApplicable(name, kind, "float labels are read as regression targets; pass "
                                        "integer labels for classes")
    y = np.asarray(labels)
    _same_n(n, y.shape[0])
    values, codes = np.unique(y, return_inverse=True)
    if values.size < 2:
        raise ValueError(f"labels have one class ({values[0]!r}) only; at least two are needed")
    return codes.astype(np.int64), int(values.size)


def _regression_targets(name: str, labels: ArrayLike, n: int) -> FloatArray:
    """Targets as ``[N, K]`` float; NotApplicable for class labels."""
    kind = label_kind(labels)
    if kind not in ESTIMATORS[name].label_kinds:
        raise NotApplicable(name, kind, "integer labels are read as classes; pass float targets "
                                        "for regression")
    y = np.asarray(labels, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    _same_n(n, y.shape[0])
    if not np.isfinite(y).all():
        raise ValueError(f"regression targets contain NaN or infinite values "
                         f"({int((~np.isfinite(y)).sum())} entries)")
    return y


def _one_hot(codes: IntArray, n_classes: int) -> FloatArray:
    out = np.zeros((codes.size, n_classes))
    out[np.arange(codes.size), codes] = 1.0
    return out


def _pca(features: FloatArray, n_components: int | float | None, seed: int = 0) -> FloatArray:
    """Principal-component scores: an int keeps that many, a float in (0, 1] that variance share."""
    if n_components is None:
        return features
    from sklearn.decomposition import PCA

    if isinstance(n_components, float):
        if not 0.0 < n_components <= 1.0:
            raise ValueError(f"variance fraction must be in (0, 1], got {n_components}")
        if n_components == 1.0:
            n_components = None
    elif n_components < 1 or n_components > min(features.shape):
        raise ValueError(f"number of PCA components must be in 1..{min(features.shape)} "
                         f"(min of N and D), got {n_components}")
    return PCA(n_components=n_components, svd_solver="full", random_state=seed).fit_transform(features)


# --------------------------------------------------------------------------------------------
# H-score and its shrinkage version
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CovariancePrep:
    """Per-source pieces of the H-scores: the feature mean and the inverse covariance, factored.

    The inverse is ``P = basis diag(weights) basis^T + outside (I - basis basis^T)``: ``basis
    [D, r]`` holds orthonormal eigenvectors of the feature covariance, ``weights [r]`` the
    inverses of the (shrunk) eigenvalues along them and ``outside`` the inverse eigenvalue on
    the rest of the space (0 for a pseudo-inverse). ``shrinkage``: the Ledoit-Wolf intensity
    used (0 for the plain H-score). :attr:`precision` writes ``P`` out as a ``D x D`` matrix.
    """

    mean: FloatArray
    basis: FloatArray
    weights: FloatArray
    outside: float = 0.0
    shrinkage: float = 0.0

    @property
    def precision(self) -> FloatArray:
        """The inverse covariance ``P`` as a dense ``D x D`` matrix."""
        p = (self.basis * self.weights) @ self.basis.T
        if self.outside:
            p += self.outside * (np.eye(self.mean.size) - self.basis @ self.basis.T)
        return p

    def quadratic_trace(self, b: FloatArray) -> float:
        """``tr(P B^T B)`` for the rows ``b [C, D]``, without forming ``P``."""
        proj = b @ self.basis                                             # [C, r]
        inside = float(np.sum(proj**2 * self.weights))
        if not self.outside:
            return inside
        return inside + self.outside * max(float(np.sum(b**2) - np.sum(proj**2)), 0.0)


def _covariance_eigen(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues ``[r]`` and orthonormal eigenvectors ``[D, r]`` of ``cov = Z^T Z / N`` (Z centred).

    Through the smaller of the two Gram matrices (``N x N`` when ``N <= D``); eigenvalues below
    ``max(N, D) * eps`` times the largest are dropped, the tolerance of a pseudo-inverse.
    """
    n, d = z.shape
    if n <= d:
        lam, u = np.linalg.eigh(z @ z.T)
    else:
        lam, v = np.linalg.eigh(z.T @ z)
    keep = lam > max(n, d) * np.finfo(np.float64).eps * max(float(lam.max()), 0.0)
    lam = lam[keep]
    if n <= d:
        v = (z.T @ u[:, keep]) / np.sqrt(lam)
    else:
        v = v[:, keep]
    return lam / n, v


def _between_class(f: FloatArray, mean: FloatArray, codes: IntArray, n_classes: int) -> FloatArray:
    """Class means of the centred features ``f - mean``, weighted by sqrt(n_c / N): rows of B with
    B^T B = cov(E[f|y])."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    indicator = (codes[None, :] == np.arange(n_classes)[:, None]).astype(np.float64)  # [C, N]
    means = (indicator @ f) / counts[:, None] - mean
    return means * np.sqrt(counts / f.shape[0])[:, None]


def _check_prep(prep: CovariancePrep, f: FloatArray) -> None:
    if prep.mean.shape != (f.shape[1],):
        raise ValueError(f"prepared pieces are for {prep.mean.shape[0]} features, the features have "
                         f"{f.shape[1]}")


def prepare_hscore(features: ArrayLike) -> CovariancePrep:
    """Mean and Moore-Penrose pseudo-inverse of the feature covariance (1/N normalisation).

    Eigenvalues below ``max(N, D) * eps`` times the largest are treated as zero. The
    eigendecomposition goes through the ``N x N`` Gram matrix when ``N <= D``, so a source
    with 2048-D features and a few hundred examples costs an ``N x N`` problem.
    """
    f = _finite_2d(features, "features")
    mean = f.mean(axis=0)
    lam, v = _covariance_eigen(f - mean)
    return CovariancePrep(mean, v, 1.0 / lam)


def hscore(features: ArrayLike, labels: ArrayLike, *, prepared: CovariancePrep | None = None) -> float:
    """H-score (Bao et al. 2019): ``tr(pinv(cov f) cov(E[f | y]))``, class targets.

    ``cov f`` is the covariance of the features over the N examples and ``E[f | y]`` replaces
    each example by the mean feature of its class. The value lies in ``[0, C - 1]`` (C classes)
    and does not change under an invertible linear map of the features; when ``N <= D`` it
    saturates at ``C - 1`` whatever the features (use :func:`shrinkage_hscore`).
    """
    f = _finite_2d(features, "features")
    codes, n_classes = _class_labels("hscore", labels, f.shape[0])
    prep = prepare_hscore(f) if prepared is None else prepared
    _check_prep(prep, f)
    return prep.quadratic_trace(_between_class(f, prep.mean, codes, n_classes))


def ledoit_wolf_shrinkage(features: ArrayLike) -> float:
    """Ledoit-Wolf shrinkage intensity of the features, as :func:`sklearn.covariance.ledoit_wolf`.

    The same formula as scikit-learn's (features centred, covariance with 1/N normalisation),
    with its two sums read off the ``N x N`` Gram matrix when ``N < D``:
    ``sum((X^T X)^2) = sum((X X^T)^2)`` and ``sum(X2^T X2) = sum_i ||x_i||^4``.
    """
    x = _finite_2d(features, "features", min_rows=1)
    n, d = x.shape
    if d == 1:
        return 0.0
    x = x - x.mean(axis=0)
    gram = x @ x.T if n < d else x.T @ x
    sq_norms = np.einsum("ij,ij->i", x, x)
    emp_trace = float(sq_norms.sum()) / n
    mu = emp_trace / d
    delta_ = float(np.sum(gram**2)) / n**2
    beta_ = float(np.sum(sq_norms**2))
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * emp_trace + d * mu**2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


def prepare_shrinkage_hscore(features: ArrayLike) -> CovariancePrep:
    """Mean, inverse of the Ledoit-Wolf shrunk covariance and its shrinkage intensity.

    With intensity ``a`` and ``mu = tr(cov f) / D`` the shrunk covariance
    ``(1 - a) cov f + a mu I`` has the eigenvalues ``(1 - a) lambda + a mu`` along the
    eigenvectors of ``cov f`` and ``a mu`` on the rest of the space; it is inverted in that form
    (a pseudo-inverse when ``a mu = 0``).
    """
    f = _finite_2d(features, "features")
    mean = f.mean(axis=0)
    z = f - mean
    a = ledoit_wolf_shrinkage(f)
    lam, v = _covariance_eigen(z)
    mu = float(np.einsum("ij,ij->", z, z)) / (f.shape[0] * f.shape[1])
    floor = a * mu
    return CovariancePrep(mean, v, 1.0 / ((1.0 - a) * lam + floor),
                          1.0 / floor if floor > 0 else 0.0, float(a))


def shrinkage_hscore(features: ArrayLike, labels: ArrayLike, *,
                     prepared: CovariancePrep | None = None) -> float:
    """Shrinkage H-score (Ibrahim et al. 2022), class targets.

    With the Ledoit-Wolf shrinkage intensity ``a`` and the shrunk covariance
    ``S_a = (1 - a) cov f + a (tr(cov f) / D) I``, the score is
    ``tr(S_a^-1 (1 - a) cov(E[f | y]))``: the between-class covariance is shrunk by the same
    factor as the feature covariance, so the score stays below ``C - 1`` and is finite and
    informative when ``N < D``.
    """
    f = _finite_2d(features, "features")
    codes, n_classes = _class_labels("shrinkage_hscore", labels, f.shape[0])
    prep = prepare_shrinkage_hscore(f) if prepared is None else prepared
    _check_prep(prep, f)
    return float((1.0 - prep.shrinkage) * prep.quadratic_trace(_between_class(f, prep.mean, codes,
                                                                               n_classes)))


# --------------------------------------------------------------------------------------------
# LogME
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SVDPrep:
    """Thin SVD of the features ``F = U diag(s) V^T`` (``k = min(N, D)``) and the feature count D."""

    u: FloatArray
    s: FloatArray
    n_features: int


@dataclass(frozen=True)
class LogMEFit:
    """Per target column: fitted prior precision alpha, noise precision beta, log evidence / N."""

    alpha: FloatArray
    beta: FloatArray
    evidence: FloatArray


def prepare_logme(features: ArrayLike) -> SVDPrep:
    """Thin SVD of the (uncentred) features, computed once per source."""
    f = _finite_2d(features, "features")
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    return SVDPrep(u, s, f.shape[1])


def _logme_columns(u: FloatArray, s: FloatArray, d: int, y: FloatArray, *, tol: float,
                   max_iter: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MacKay's fixed point for every column of ``y [N, K]`` at once (each stops on its own)."""
    n = y.shape[0]
    sigma = s**2                      # eigenvalues of F^T F; the other D - k are zero
    z = (u.T @ y).T                   # [K, k]
    outside = np.maximum(np.einsum("nk,nk->k", y, y) - np.einsum("kj,kj->k", z, z), 0.0)
    alpha, beta = np.ones(y.shape[1]), np.ones(y.shape[1])
    # Features that interpolate the target (N <= rank) drive beta to infinity, where the evidence
    # has a finite limit but its terms overflow: the noise variance is held at or above 1e-10 of
    # the target's mean square, which changes the evidence by O(1e-10) and keeps it finite.
    beta_max = 1e10 * n / np.maximum(np.einsum("nk,nk->k", y, y), 1e-300)

    def pieces(alpha: FloatArray, beta: FloatArray, z: FloatArray,
               outside: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        denom = alpha[:, None] + beta[:, None] * sigma
        m2 = np.sum((beta[:, None] * s * z / denom) ** 2, axis=1)            # ||m||^2
        res2 = np.sum((alpha[:, None] * z / denom) ** 2, axis=1) + outside   # ||F m - y||^2
        gamma = np.sum(beta[:, None] * sigma / denom, axis=1)
        return m2, res2, gamma

    active = np.arange(y.shape[1])
    for _ in range(max_iter):
        if active.size == 0:
            break
        a, b = alpha[active], beta[active]
        m2, res2, gamma = pieces(a, b, z[active], outside[active])
        new_a = gamma / np.maximum(m2, 1e-300)
        new_b = np.minimum((n - gamma) / np.maximum(res2, 1e-300), beta_max[active])
        done = (np.abs(new_a - a) <= tol * a) & (np.abs(new_b - b) <= tol * b)
        alpha[active], beta[active] = new_a, new_b
        active = active[~done]
    m2, res2, _ = pieces(alpha, beta, z, outside)
    logdet = np.sum(np.log(alpha[:, None] + beta[:, None] * sigma), axis=1) + (d - s.size) * np.log(alpha)
    evidence = (n * np.log(beta) + d * np.log(alpha) - n * np.log(2 * np.pi)
                - beta * res2 - alpha * m2 - logdet) / 2.0
    return alpha, beta, evidence / n


def logme_evidence(features: ArrayLike, targets: ArrayLike, *, prepared: SVDPrep | None = None,
                   tol: float = 1e-6, max_iter: int = 200) -> LogMEFit:
    """Bayesian linear regression evidence of each column of ``targets [N, K]`` on the features.

    Model: ``y = F w + noise``, ``w ~ N(0, I / alpha)``, noise ``~ N(0, I / beta)``. alpha and
    beta are fitted by MacKay's fixed-point iteration
    ``alpha = gamma / ||m||^2``, ``beta = (N - gamma) / ||F m - y||^2``,
    ``gamma = sum_i beta sigma_i / (alpha + beta sigma_i)`` (``sigma_i`` the eigenvalues of
    ``F^T F``, ``m`` the posterior mean), all through the SVD of ``F``. The log determinant runs
    over all D eigenvalues of ``alpha I + beta F^T F``: when ``N < D`` the ``D - N`` zero
    eigenvalues of ``F^T F`` contribute ``log alpha`` each. Returns the log evidence divided by N.
    """
    f = _finite_2d(features, "features")
    y = np.asarray(targets, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    _same_n(f.shape[0], y.shape[0])
    prep = prepare_logme(f) if prepared is None else prepared
    if prep.u.shape[0] != f.shape[0] or prep.n_features != f.shape[1]:
        raise ValueError(f"prepared SVD is for {prep.u.shape[0]} x {prep.n_features} features, the "
                         f"features are {f.shape[0]} x {f.shape[1]}")
    zero = ~y.any(axis=0)
    if zero.any():
        raise ValueError(f"target column {int(np.argmax(zero))} is all zeros; its evidence is unbounded")
    alpha, beta, evidence = _logme_columns(prep.u, prep.s, prep.n_features, y, tol=tol,
                                           max_iter=max_iter)
    return LogMEFit(alpha, beta, evidence)


def logme(features: ArrayLike, labels: ArrayLike, *, prepared: SVDPrep | None = None,
          tol: float = 1e-6, max_iter: int = 200) -> float:
    """LogME (You et al. 2021): mean log evidence per example, class or regression targets.

    Class labels become one indicator column per class; regression targets ``[N]`` or ``[N, K]``
    are used column by column. The result is the mean over columns of
    :func:`logme_evidence` (log evidence / N).
    """
    f = _finite_2d(features, "features")
    if label_kind(labels) == "class":
        codes, n_classes = _class_labels("logme", labels, f.shape[0])
        y = _one_hot(codes, n_classes)
    else:
        y = _regression_targets("logme", labels, f.shape[0])
    return float(logme_evidence(f, y, prepared=prepared, tol=tol, max_iter=max_iter).evidence.mean())


# --------------------------------------------------------------------------------------------
# LEEP, NCE, N-LEEP
# --------------------------------------------------------------------------------------------


def _probabilities(p: ArrayLike) -> FloatArray:
    a = _finite_2d(p, "source probabilities", min_rows=1)
    if (a < 0).any():
        raise ValueError(f"source probabilities contain negative values (min {a.min():.3g})")
    sums = a.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > 1e-3:
        raise ValueError(f"source probabilities must sum to 1 per row; row {worst} sums to "
                         f"{sums[worst]:.6g}")
    return a / sums[:, None]


def leep(source_probabilities: ArrayLike, labels: ArrayLike) -> float:
    """LEEP (Nguyen et al. 2020) from the source head's probabilities ``[N, C_s]``, class targets.

    With the empirical joint ``P(y, z) = (1/N) sum_i theta_z(x_i) [y_i = y]`` and
    ``P(y | z) = P(y, z) / P(z)``, the score is ``(1/N) sum_i log sum_z P(y_i | z) theta_z(x_i)``,
    the mean log-likelihood of the "expected empirical predictor". It is at most 0, with 0
    reached when the source prediction determines the label. Source classes that no example
    puts weight on get ``P(y | z) = 0`` (they contribute nothing).
    """
    theta = _probabilities(source_probabilities)
    codes, n_classes = _class_labels("leep", labels, theta.shape[0])
    joint = _one_hot(codes, n_classes).T @ theta / theta.shape[0]      # [C, C_s]
    pz = joint.sum(axis=0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)
    eep = np.einsum("iz,iz->i", theta, cond[codes])
    return float(np.mean(np.log(eep)))


def nce(source_predictions: ArrayLike, labels: ArrayLike) -> float:
    """NCE (Tran et al. 2019): ``-H(Y | Z)`` with ``Z`` the source head's predicted classes, nats.

    ``H(Y | Z) = -sum_{y,z} P(y, z) log P(y | z)`` over the empirical joint distribution of the
    predicted source class and the target label. At most 0; 0 when ``Z`` determines ``Y``.
    """
    z = np.asarray(source_predictions)
    if z.ndim != 1 or z.dtype.kind not in "biu":
        raise ValueError(f"source predictions must be integer classes [N], got dtype {z.dtype} and "
                         f"shape {z.shape}")
    codes, n_classes = _class_labels("nce", labels, z.shape[0])
    _, zc = np.unique(z, return_inverse=True)
    joint = np.zeros((n_classes, int(zc.max()) + 1))
    np.add.at(joint, (codes, zc), 1.0)
    joint /= z.shape[0]
    pz = joint.sum(axis=0)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz)[nz])))


class NLEEPPrep:
    """One source's PCA scores and the Gaussian-mixture posteriors fitted to them so far.

    The mixture of N-LEEP is fitted to the features alone; the target decides only its number
    of components (``components_per_class`` times its number of classes). Targets of one source
    with the same number of classes therefore share one fit: :meth:`posteriors` fits a mixture
    the first time a (components, covariance type, seed) combination is asked for and returns
    the stored posteriors afterwards. ``fits`` counts the mixtures fitted.
    """

    def __init__(self, scores: FloatArray):
        self.scores = np.asarray(scores, dtype=np.float64)
        self._posteriors: dict[tuple[int, str, int], FloatArray] = {}

    @property
    def fits(self) -> int:
        return len(self._posteriors)

    def posteriors(self, n_components: int, covariance_type: str = "diag", seed: int = 0) -> FloatArray:
        """Posterior component probabilities ``[N, n_components]`` of a seeded mixture."""
        key = (int(n_components), str(covariance_type), int(seed))
        if key not in self._posteriors:
            from sklearn.mixture import GaussianMixture

            gmm = GaussianMixture(n_components=key[0], covariance_type=key[1], random_state=key[2])
            self._posteriors[key] = gmm.fit(self.scores).predict_proba(self.scores)
        return self._posteriors[key]


def prepare_nleep(features: ArrayLike, variance: float = 0.8) -> NLEEPPrep:
    """PCA scores of the features keeping ``variance`` of their variance (one PCA per source),
    with room for the mixtures fitted to them (:class:`NLEEPPrep`)."""
    return NLEEPPrep(_pca(_finite_2d(features, "features"), float(variance)))


def nleep(features: ArrayLike, labels: ArrayLike, *, variance: float = 0.8,
          components_per_class: int = 5, covariance_type: str = "diag", seed: int = 0,
          prepared: NLEEPPrep | FloatArray | None = None) -> float:
    """N-LEEP (Li et al. 2021): LEEP with a Gaussian mixture in place of the source head.

    The features are reduced by PCA to the components explaining ``variance`` (0.8, the
    authors' choice) of their variance; a Gaussian mixture with ``components_per_class`` times
    the number of target classes components (at most N; seeded, ``covariance_type`` as in
    :class:`sklearn.mixture.GaussianMixture`) is fitted to them, and its posterior component
    probabilities are scored by :func:`leep`. Works for features of any source. ``prepared``:
    the output of :func:`prepare_nleep` (then ``variance`` is not used; mixtures already fitted
    for the same number of components are reused) or PCA scores ``[N, k]``.
    """
    f = _finite_2d(features, "features")
    codes, n_classes = _class_labels("nleep", labels, f.shape[0])
    if prepared is None:
        prep = prepare_nleep(f, variance)
    elif isinstance(prepared, NLEEPPrep):
        prep = prepared
    else:
        prep = NLEEPPrep(prepared)
    if prep.scores.shape[0] != f.shape[0]:
        raise ValueError(f"prepared PCA scores have {prep.scores.shape[0]} rows, the features {f.shape[0]}")
    if components_per_class < 1:
        raise ValueError(f"components_per_class must be at least 1, got {components_per_class}")
    k = min(components_per_class * n_classes, f.shape[0])
    return leep(prep.posteriors(k, covariance_type, seed), codes)


# --------------------------------------------------------------------------------------------
# TransRate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransRatePrep:
    """Centred (and normalised) features and their coding rate, per source."""

    z: FloatArray
    rate: float
    eps: float
    gram: FloatArray | None = None   # Z Z^T when N < D: the classes' coding rates read it


def _coding_rate(z: FloatArray, eps: float) -> float:
    """``1/2 log det(I + Z^T Z / (n eps))``, via the smaller of the two Gram matrices."""
    n = z.shape[0]
    gram = z @ z.T if n < z.shape[1] else z.T @ z
    _, logdet = np.linalg.slogdet(np.eye(gram.shape[0]) + gram / (n * eps))
    return 0.5 * float(logdet)


def prepare_transrate(features: ArrayLike, *, eps: float = 1e-4, normalize: bool = True) -> TransRatePrep:
    """Centre the features, scale them to unit mean squared norm, compute their coding rate."""
    f = _finite_2d(features, "features")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    z = f - f.mean(axis=0)
    if normalize:
        scale = np.sqrt(np.mean(np.sum(z**2, axis=1)))
        if scale == 0:
            raise ValueError("features are the same for every example; TransRate is undefined")
        z = z / scale
    gram = z @ z.T if z.shape[0] < z.shape[1] else None
    return TransRatePrep(z, _coding_rate(z, eps), eps, gram)


def transrate(features: ArrayLike, labels: ArrayLike, *, eps: float = 1e-4, normalize: bool = True,
              prepared: TransRatePrep | None = None) -> float:
    """TransRate (Huang et al. 2022): coding rate of all features minus that given the class.

    ``R(Z) = 1/2 log det(I + Z^T Z / (n eps))`` (``eps`` plays the role of the squared
    distortion; 1e-4 is the authors' value) and
    ``TrR = R(Z) - sum_c (n_c / N) R(Z_c)``, ``Z_c`` the rows of class c. The features are
    centred over all examples and, with ``normalize``, divided by their root mean squared norm
    so the score does not depend on the features' scale. ``prepared``: the output of
    :func:`prepare_transrate` (then ``eps`` and ``normalize`` come from it).
    """
    f = _finite_2d(features, "features")
    codes, n_classes = _class_labels("transrate", labels, f.shape[0])
    prep = prepare_transrate(f, eps=eps, normalize=normalize) if prepared is None else prepared
    if prep.z.shape != f.shape:
        raise ValueError(f"prepared features have shape {prep.z.shape}, the features {f.shape}")
    conditional = 0.0
    for c in range(n_classes):
        rows = np.flatnonzero(codes == c)
        if prep.gram is not None:     # n_c <= N < D: the class's Gram matrix is a block of Z Z^T
            block = prep.gram[np.ix_(rows, rows)]
            _, logdet = np.linalg.slogdet(np.eye(rows.size) + block / (rows.size * prep.eps))
            rate_c = 0.5 * float(logdet)
        else:
            rate_c = _coding_rate(prep.z[rows], prep.eps)
        conditional += rows.size / f.shape[0] * rate_c
    return prep.rate - conditional


# --------------------------------------------------------------------------------------------
# GBC
# --------------------------------------------------------------------------------------------


def bhattacharyya_coefficients(features: ArrayLike, labels: ArrayLike) -> FloatArray:
    """``C x C`` Bhattacharyya coefficients between class-conditional diagonal Gaussians.

    Per class: mean and per-dimension (population) variance, floored at 1e-9 times the mean
    feature variance so classes with one example or constant dimensions stay finite. For two
    classes with mean difference ``dm`` and average variance ``v = (v1 + v2) / 2``, the
    Bhattacharyya distance is ``sum_d dm^2 / (8 v) + 1/2 log(v / sqrt(v1 v2))`` and the
    coefficient ``exp(-distance)``; the diagonal is 1.
    """
    f = _finite_2d(features, "features")
    y = np.asarray(labels)
    _same_n(f.shape[0], y.shape[0])
    _, codes = np.unique(y, return_inverse=True)
    n_classes = int(codes.max()) + 1
    floor = 1e-9 * max(float(f.var(axis=0).mean()), 1e-300)
    means = np.stack([f[codes == c].mean(axis=0) for c in range(n_classes)])
    variances = np.stack([f[codes == c].var(axis=0) for c in range(n_classes)]) + floor
    logv = np.log(variances)
    bc = np.ones((n_classes, n_classes))
    for i in range(n_classes):
        v = (variances[i] + variances) / 2.0
        dist = (np.sum((means[i] - means) ** 2 / (8.0 * v), axis=1)
                + 0.5 * np.sum(np.log(v) - 0.5 * (logv[i] + logv), axis=1))
        bc[i] = np.exp(-dist)
    np.fill_diagonal(bc, 1.0)
    return bc


def gbc(features: ArrayLike, labels: ArrayLike, *, pca_components: int | None = None,
        seed: int = 0) -> float:
    """GBC (Pandy et al. 2022): ``-sum`` over ordered pairs of distinct classes of their BC.

    Coefficients from :func:`bhattacharyya_coefficients`, summed over all ``i != j`` (each
    unordered pair twice), so the score lies in ``[-C (C - 1), 0]``: 0 for perfectly separated
    classes, ``-C (C - 1)`` for classes with identical distributions. ``pca_components``
    optionally reduces the features by PCA first (off by default).
    """
    f = _finite_2d(features, "features")
    codes, _ = _class_labels("gbc", labels, f.shape[0])
    bc = bhattacharyya_coefficients(_pca(f, pca_components, seed), codes)
    return float(-(bc.sum() - np.trace(bc)))


# --------------------------------------------------------------------------------------------
# Linear MSE
# --------------------------------------------------------------------------------------------


def train_test_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[IntArray, IntArray]:
    """Seeded random split of ``range(n)``: ``round(test_fraction n)`` held out (at least 1)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = max(1, int(round(test_fraction * n)))
    if n - n_test < 2:
        raise ValueError(f"{n} examples leave {n - n_test} for training at test_fraction "
                         f"{test_fraction}; at least 2 are needed")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def ridge_fit(features: ArrayLike, targets: ArrayLike, ridge: float) -> tuple[FloatArray, FloatArray]:
    """Ridge regression with an unpenalised intercept: weights ``[D, K]`` and intercept ``[K]``.

    Minimises ``||X w + b - y||^2 + ridge ||w||^2``; solved in the primal (``D x D``) or dual
    (``N x N``) form, whichever is smaller.
    """
    if not ridge > 0:
        raise ValueError(f"ridge must be positive, got {ridge}")
    x = _finite_2d(features, "features")
    y = np.asarray(targets, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    _same_n(x.shape[0], y.shape[0])
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    if x.shape[1] <= x.shape[0]:
        w = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ yc)
    else:
        w = xc.T @ np.linalg.solve(xc @ xc.T + ridge * np.eye(x.shape[0]), yc)
    return w, ym - xm @ w


@dataclass(frozen=True)
class RidgePrep:
    """Seeded split and the linear map from centred training targets to held-out predictions.

    ``prediction = projector @ (y[train] - mean(y[train])) + mean(y[train])``, with ``projector
    = (X_test - m) (Xc^T Xc + ridge I)^-1 Xc^T`` (``Xc`` the centred training features, ``m``
    their mean), computed in the primal or dual form, whichever is smaller.
    """

    train: IntArray
    test: IntArray
    projector: FloatArray
    test_fraction: float
    ridge: float
    seed: int


def prepare_linear_mse(features: ArrayLike, *, test_fraction: float = 0.2, ridge: float = 1.0,
                       seed: int = 0) -> RidgePrep:
    """The split and held-out prediction map of :func:`linear_mse`, once per source."""
    if not ridge > 0:
        raise ValueError(f"ridge must be positive, got {ridge}")
    x = _finite_2d(features, "features")
    train, test = train_test_indices(x.shape[0], test_fraction, seed)
    xm = x[train].mean(axis=0)
    xc, xt = x[train] - xm, x[test] - xm
    if x.shape[1] <= train.size:
        projector = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xt.T).T @ xc.T
    else:
        projector = np.linalg.solve(xc @ xc.T + ridge * np.eye(train.size), xc @ xt.T).T
    return RidgePrep(train, test, projector, float(test_fraction), float(ridge), int(seed))


def linear_mse(features: ArrayLike, labels: ArrayLike, *, test_fraction: float = 0.2,
               ridge: float = 1.0, seed: int = 0, prepared: RidgePrep | None = None) -> float:
    """Negative held-out mean squared error of a ridge regression, regression targets.

    After Nguyen et al. (2023): fit :func:`ridge_fit` on a seeded training split
    (:func:`train_test_indices`) and return ``-mean((prediction - y)^2)`` on the held-out part,
    averaged over target columns, so that higher means better transfer. ``prepared``: the
    output of :func:`prepare_linear_mse` (then the split and ridge strength come from it).
    """
    x = _finite_2d(features, "features")
    y = _regression_targets("linear_mse", labels, x.shape[0])
    if prepared is None:
        train, test = train_test_indices(x.shape[0], test_fraction, seed)
        w, b = ridge_fit(x[train], y[train], ridge)
        return -float(np.mean((x[test] @ w + b - y[test]) ** 2))
    if prepared.train.size + prepared.test.size != x.shape[0]:
        raise ValueError(f"prepared split is for {prepared.train.size + prepared.test.size} examples, "
                         f"the features have {x.shape[0]}")
    ym = y[prepared.train].mean(axis=0)
    prediction = prepared.projector @ (y[prepared.train] - ym) + ym
    return -float(np.mean((prediction - y[prepared.test]) ** 2))


# --------------------------------------------------------------------------------------------
# PARC
# --------------------------------------------------------------------------------------------


def _pearson_dissimilarity(x: FloatArray, what: str) -> FloatArray:
    """Upper triangle (row-major, ``k = 1``) of ``1 - Pearson`` between the rows of ``x``."""
    z = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(z, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{what} of example {int(np.argmin(norms))} are constant; their Pearson "
                         f"correlation is undefined")
    z /= norms[:, None]
    iu = np.triu_indices(x.shape[0], k=1)
    return 1.0 - (z @ z.T)[iu]


def prepare_parc(features: ArrayLike, *, pca_components: int | None = None, seed: int = 0) -> FloatArray:
    """Ranks of the feature dissimilarities ``1 - Pearson`` over example pairs (one per source)."""
    f = _pca(_finite_2d(features, "features", min_rows=3), pca_components, seed)
    return rankdata(_pearson_dissimilarity(f, "features"))


def parc(features: ArrayLike, labels: ArrayLike, *, pca_components: int | None = None,
         percent: bool = False, seed: int = 0, prepared: FloatArray | None = None) -> float:
    """PARC (Bolya et al. 2021): Spearman correlation of feature and label dissimilarities.

    Feature dissimilarity of two examples is ``1 - Pearson`` of their feature vectors. Label
    dissimilarity is ``1 - Pearson`` of their one-hot vectors for class targets (the paper's
    definition) and the Euclidean distance of their target vectors for regression targets
    (Pearson is undefined for one target value per example). The score is the Spearman
    correlation over the strict upper triangles, in ``[-1, 1]``; the paper reports it times 100,
    which ``percent=True`` gives. ``pca_components`` optionally reduces the features first (the
    authors reduced to 32 dimensions for speed; off by default). ``prepared``: the output of
    :func:`prepare_parc`.
    """
    from scipy.spatial.distance import pdist

    f = _finite_2d(features, "features", min_rows=3)
    n = f.shape[0]
    if label_kind(labels) == "class":
        codes, n_classes = _class_labels("parc", labels, n)
        # 1 - Pearson of one-hot vectors, exactly: 0 within a class, C / (C - 1) across classes
        # (computed in floating point, rounding would break the ties the ranks rely on)
        iu = np.triu_indices(n, k=1)
        label_d = np.where(codes[iu[0]] == codes[iu[1]], 0.0, n_classes / (n_classes - 1))
    else:
        label_d = pdist(_regression_targets("parc", labels, n))
    feature_r = prepare_parc(f, pca_components=pca_components, seed=seed) if prepared is None \
        else np.asarray(prepared)
    if feature_r.shape != label_d.shape:
        raise ValueError(f"prepared dissimilarities have {feature_r.size} pairs, {n} examples have "
                         f"{label_d.size}")
    label_r = rankdata(label_d)
    if np.ptp(label_r) == 0 or np.ptp(feature_r) == 0:
        raise ValueError("all label (or feature) dissimilarities are equal; the rank correlation "
                         "is undefined")
    rho = float(np.corrcoef(feature_r, label_r)[0, 1])
    return 100.0 * rho if percent else rho


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimatorSpec:
    """Declaration of one estimator.

    ``label_kinds``: the kinds of target it is defined for; ``input``: what it reads in place of
    ``features``; ``higher_is_better``: its orientation; ``prepare``: the per-source
    precomputation it accepts as ``prepared=`` and ``prepare_options`` the keyword options that
    go to ``prepare`` rather than to the estimator.
    """

    name: str
    function: Callable[..., float]
    label_kinds: tuple[LabelKind, ...]
    input: InputKind
    higher_is_better: bool
    reference: str
    prepare: Callable[..., Any] | None = None
    prepare_options: tuple[str, ...] = ()


ESTIMATORS: Mapping[str, EstimatorSpec] = {
    spec.name: spec for spec in (
        EstimatorSpec("hscore", hscore, ("class",), "features", True, "Bao et al. 2019",
                      prepare_hscore),
        EstimatorSpec("shrinkage_hscore", shrinkage_hscore, ("class",), "features", True,
                      "Ibrahim et al. 2022", prepare_shrinkage_hscore),
        EstimatorSpec("logme", logme, ("class", "regression"), "features", True,
                      "You et al. 2021", prepare_logme),
        EstimatorSpec("leep", leep, ("class",), "source_probabilities", True, "Nguyen et al. 2020"),
        EstimatorSpec("nce", nce, ("class",), "source_predictions", True, "Tran et al. 2019"),
        EstimatorSpec("nleep", nleep, ("class",), "features", True, "Li et al. 2021",
                      prepare_nleep, ("variance",)),
        EstimatorSpec("transrate", transrate, ("class",), "features", True, "Huang et al. 2022",
                      prepare_transrate, ("eps", "normalize")),
        EstimatorSpec("gbc", gbc, ("class",), "features", True, "Pandy et al. 2022"),
        EstimatorSpec("linear_mse", linear_mse, ("regression",), "features", True,
                      "Nguyen et al. 2023", prepare_linear_mse, ("test_fraction", "ridge", "seed")),
        EstimatorSpec("parc", parc, ("class", "regression"), "features", True, "Bolya et al. 2021",
                      prepare_parc, ("pca_components", "seed")),
    )
}


def _spec(name: str) -> EstimatorSpec:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}") from None


def applicable(name: str, label_kind: str) -> bool:
    """Whether estimator ``name`` is defined for targets of ``label_kind`` ("class"/"regression")."""
    if label_kind not in LABEL_KINDS:
        raise ValueError(f"label kind must be one of {LABEL_KINDS}, got {label_kind!r}")
    return label_kind in _spec(name).label_kinds


def estimate(name: str, inputs: ArrayLike, labels: ArrayLike, **options: Any) -> float | NotApplicable:
    """Run estimator ``name``; a :class:`NotApplicable` instance (not raised) for a mismatched target."""
    spec = _spec(name)
    try:
        return spec.function(inputs, labels, **options)
    except NotApplicable as exc:
        return exc


# --------------------------------------------------------------------------------------------
# Dense targets
# --------------------------------------------------------------------------------------------


def _edges(size: int, grid: int) -> IntArray:
    return np.round(np.linspace(0, size, grid + 1)).astype(np.int64)


def _block_sums(x: NDArray[Any], grid: int) -> FloatArray:
    """Sums of ``x [N, H, W, ...]`` over a ``grid x grid`` partition of (H, W)."""
    eh, ew = _edges(x.shape[1], grid), _edges(x.shape[2], grid)
    return np.add.reduceat(np.add.reduceat(x, eh[:-1], axis=1), ew[:-1], axis=2)


def dense_to_cells(label_maps: ArrayLike, grid: int, levels: int | None = None) -> NDArray[Any]:
    """Per-cell targets of dense label maps on a coarse ``grid x grid`` partition.

    ``label_maps``: integer class maps ``[N, H, W]`` or float maps ``[N, H, W]`` /
    ``[N, H, W, C]``. The image is cut into ``grid`` rows and columns of (nearly) equal blocks;
    cells are numbered row-major. Float maps may mark missing pixels as NaN (depth without a
    return): a cell's value is the mean of its valid pixels, and a cell with no valid pixel in
    an image takes that cell's mean over the images that have one (the middle of its range, so
    it pulls no image apart); a cell missing in every image is constant and left out by the
    estimators.

    - Class maps: the majority class of each cell (ties go to the smallest label), returned as
      integer labels ``[grid^2, N]``; ``levels`` must be None.
    - Float maps, ``levels=None``: the block average, standardised per cell (and channel) over
      the N examples (constant cells become zeros): float ``[grid^2, N]`` or ``[grid^2, N, C]``,
      targets for regression estimators.
    - Float maps, ``levels=L``: the block average quantized per cell (and channel) into ``L``
      quantile levels over the N examples: integer classes ``[grid^2 * C, N]`` (channel fastest),
      targets for class estimators. Heavily tied cells can have fewer than ``L`` levels.
    """
    x = np.asarray(label_maps)
    if x.ndim not in (3, 4):
        raise ValueError(f"label maps must be [N, H, W] or [N, H, W, C], got shape {x.shape}")
    if not isinstance(grid, (int, np.integer)) or grid < 1 or grid > min(x.shape[1], x.shape[2]):
        raise ValueError(f"grid must be an integer in 1..{min(x.shape[1], x.shape[2])} (the map "
                         f"size), got {grid!r}")
    n = x.shape[0]
    if x.dtype.kind in "biu":
        if x.ndim != 3:
            raise ValueError(f"class maps must be [N, H, W], got shape {x.shape}")
        if levels is not None:
            raise ValueError(f"levels={levels} applies to float maps; class maps keep their classes")
        values, codes = np.unique(x, return_inverse=True)
        codes = codes.reshape(x.shape)
        best = np.full((n, grid, grid), -1.0)
        winner = np.zeros((n, grid, grid), dtype=np.int64)
        for k in range(values.size):
            count = _block_sums((codes == k).astype(np.int64), grid)
            better = count > best
            best[better], winner[better] = count[better], k
        return values[winner].reshape(n, grid * grid).T.copy()
    if x.dtype.kind != "f":
        raise ValueError(f"label maps must be integer (classes) or float, got dtype {x.dtype}")
    if np.isinf(x).any():
        raise ValueError(f"label maps contain infinite values ({int(np.isinf(x).sum())} entries)")
    xf = x.astype(np.float64)[..., None] if x.ndim == 3 else x.astype(np.float64)
    valid = ~np.isnan(xf)
    counts = _block_sums(valid.astype(np.float64), grid)
    sums = _block_sums(np.where(valid, xf, 0.0), grid)
    with np.errstate(invalid="ignore", divide="ignore"):
        cells = (sums / counts).reshape(n, grid * grid, xf.shape[3])               # [N, G^2, C]
    empty = np.isnan(cells)
    if empty.any():  # a cell without a valid pixel in an image: the cell's mean over the others
        fill = np.nanmean(np.where(empty.all(axis=0), 0.0, cells), axis=0)
        cells = np.where(empty, fill[None], cells)
    if levels is None:
        std = cells.std(axis=0)
        out = np.divide(cells - cells.mean(axis=0), std, out=np.zeros_like(cells), where=std > 0)
        out = out.transpose(1, 0, 2)
        return out[:, :, 0] if x.ndim == 3 else out
    if not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ValueError(f"levels must be an integer of at least 2, got {levels!r}")
    flat = cells.reshape(n, -1)                                                      # [N, G^2 C]
    quantiles = np.quantile(flat, np.arange(1, levels) / levels, axis=0)             # [L-1, G^2 C]
    out = np.empty(flat.shape[::-1], dtype=np.int64)
    for j in range(flat.shape[1]):
        out[j] = np.searchsorted(quantiles[:, j], flat[:, j], side="right")
    return out


def _informative(target: NDArray[Any]) -> NDArray[Any] | None:
    """The target without constant columns; None when nothing varies."""
    if target.dtype.kind in "biu":
        return target if np.unique(target).size > 1 else None
    t = target[:, None] if target.ndim == 1 else target
    keep = np.ptp(t, axis=0) > 0
    if not keep.any():
        return None
    t = t[:, keep]
    return t[:, 0] if target.ndim == 1 else t


def mean_over_cells(estimator: str | Callable[..., float], features: ArrayLike,
                    cell_targets: ArrayLike, **options: Any) -> float:
    """Mean of an estimator over the per-cell targets of :func:`dense_to_cells`.

    ``estimator``: a name in :data:`ESTIMATORS` or a callable ``f(features, labels, **options)``.
    Cells whose target is constant over the examples (one class, or zero variance; for
    multi-channel regression targets, constant channels are dropped) carry no information and
    are skipped. With a name, the estimator's per-source preparation is computed once (with the
    options it takes) and reused for every cell.
    """
    targets = np.asarray(cell_targets)
    if targets.ndim < 2:
        raise ValueError(f"cell targets must be [cells, N] or [cells, N, C], got shape {targets.shape}")
    if isinstance(estimator, str):
        spec = _spec(estimator)
        function = spec.function
        if spec.prepare is not None and "prepared" not in options:
            prep_kw = {k: options.pop(k) for k in spec.prepare_options if k in options}
            options["prepared"] = spec.prepare(features, **prep_kw)
    else:
        function = estimator
    cells = [t for t in (_informative(target) for target in targets) if t is not None]
    if not cells:
        raise ValueError(f"all {targets.shape[0]} cell targets are constant over the examples")
    if function is logme and set(options) <= {"prepared", "tol", "max_iter"}:
        return _logme_over_cells(features, cells, **options)
    return float(np.mean([function(features, t, **options) for t in cells]))


def _logme_over_cells(features: ArrayLike, cells: Sequence[NDArray[Any]], *,
                      prepared: SVDPrep | None = None, tol: float = 1e-6, max_iter: int = 200) -> float:
    """:func:`logme` of every cell, averaged, with one fixed-point run over the columns of all
    cells at once (each column's iteration is independent, so the values are those of one call
    per cell, at a fraction of the cost)."""
    f = _finite_2d(features, "features")
    columns = []
    for t in cells:
        if label_kind(t) == "class":
            codes, n_classes = _class_labels("logme", t, f.shape[0])
            columns.append(_one_hot(codes, n_classes))
        else:
            columns.append(_regression_targets("logme", t, f.shape[0]))
    evidence = logme_evidence(f, np.concatenate(columns, axis=1), prepared=prepared, tol=tol,
                              max_iter=max_iter).evidence
    bounds = np.cumsum([0] + [c.shape[1] for c in columns])
    return float(np.mean([evidence[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])]))
