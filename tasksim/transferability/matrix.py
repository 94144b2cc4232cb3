"""Source x target matrix of one transferability estimator, with each source's shared work done once.

:func:`transferability_matrix` scores every source (a model's features of the target images,
or its classifier head's outputs) against every target (labels of the same images) and returns a
source x target DataFrame, higher = better, NaN where the estimator does not apply. The target
label kinds are those of the label inputs (:data:`TARGET_KINDS`):

===================== =============================== ==============================================
kind                  labels                          read as
===================== =============================== ==============================================
``class``             integer ``[N]``                 class target
``vector_regression`` float ``[N]`` or ``[N, K]``     regression target, each channel standardised
                                                      over the images (``regression`` is accepted
                                                      as an alias); with ``levels``, also one class
                                                      target per channel for class-only estimators
``dense_class``       integer ``[N, H, W]``           per-cell majority class on a ``grid x grid``
                                                      partition, estimator averaged over the cells
``dense_regression``  float ``[N, H, W]`` / ``[N, H,  per-cell block means, standardised, for
                      W, K]``                         regression estimators; quantized into
                                                      ``levels`` quantile levels per cell and
                                                      channel for class-only estimators
``dense_instance``    integer ``[N, H, W]``           not applicable: segment ids name segments
                                                      within one image only
===================== =============================== ==============================================

An estimator that reads both kinds (LogME, PARC) takes the regression reading of float labels;
a class-only estimator is not applicable to float labels unless ``levels`` is given, and a
regression-only one (linear MSE) never to integer labels. Dense targets go through
:func:`~tasksim.transferability.estimators.dense_to_cells` once per target and
:func:`~tasksim.transferability.estimators.mean_over_cells` per pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from tasksim.transferability import estimators as _est

__all__ = ["TARGET_KINDS", "DEFAULT_GRID", "transferability_matrix"]

#: Label kinds a target can have (the label inputs' kinds, plus ``regression`` for float [N, K]).
TARGET_KINDS: tuple[str, ...] = ("class", "dense_class", "dense_regression", "vector_regression",
                                 "dense_instance", "regression")
#: Default coarse grid of dense targets: 4 x 4 cells.
DEFAULT_GRID = 4


class _Target:
    """One target's labels in the readings the estimators take (computed once per target)."""

    def __init__(self, name: str, labels: ArrayLike, kind: str, grid: int, levels: int | None):
        if kind not in TARGET_KINDS:
            raise ValueError(f"target {name}: unknown label kind {kind!r}; known: {', '.join(TARGET_KINDS)}")
        self.name, self.kind = name, kind
        self.regression: NDArray[Any] | None = None    # [cells, N] or [cells, N, K] float
        self.classes: NDArray[Any] | None = None       # [cells, N] int, or [N] int for a class target
        self.why_not: dict[str, str] = {}
        y = np.asarray(labels)
        try:
            if kind == "class":
                if y.ndim != 1 or y.dtype.kind not in "biu":
                    raise ValueError(f"class labels must be integer [N], got {y.dtype} {y.shape}")
                self.classes = y
            elif kind in ("vector_regression", "regression"):
                if y.ndim not in (1, 2) or y.dtype.kind != "f":
                    raise ValueError(f"vector regression labels must be float [N] or [N, K], got "
                                     f"{y.dtype} {y.shape}")
                maps = y.reshape(y.shape[0], 1, 1, -1)
                self.regression = _est.dense_to_cells(maps, 1)
                if levels is not None:
                    self.classes = _est.dense_to_cells(maps, 1, levels)
            elif kind == "dense_class":
                self.classes = _est.dense_to_cells(y, grid)
            elif kind == "dense_regression":
                if y.dtype.kind != "f":
                    raise ValueError(f"dense regression labels must be float, got {y.dtype}")
                self.regression = _est.dense_to_cells(y, grid)
                if levels is not None:
                    self.classes = _est.dense_to_cells(y, grid, levels)
            else:
                self.why_not["*"] = "segment ids name segments within one image only"
        except ValueError as exc:
            raise ValueError(f"target {name}: {exc}") from None
        if self.regression is None and kind != "dense_instance":
            self.why_not["regression"] = f"{kind} labels are classes"
        if self.classes is None and kind != "dense_instance":
            self.why_not["class"] = f"{kind} labels are float (pass levels= to quantize them)"

    def reading(self, label_kinds: Sequence[str]) -> tuple[NDArray[Any] | None, bool, str]:
        """(labels, dense, reason): the reading an estimator of ``label_kinds`` takes; labels None
        and a reason when it takes none. Float labels are read as regression when it can."""
        if "*" in self.why_not:
            return None, False, self.why_not["*"]
        if "regression" in label_kinds and self.regression is not None:
            return self.regression, True, ""
        if "class" in label_kinds and self.classes is not None:
            return self.classes, self.kind != "class", ""
        reasons = [self.why_not[k] for k in label_kinds if k in self.why_not]
        return None, False, "; ".join(reasons) or "no reading"


def _head_input(spec: _est.EstimatorSpec, head: ArrayLike) -> tuple[NDArray[Any] | None, str]:
    h = np.asarray(head)
    if spec.input == "source_probabilities":
        if h.ndim != 2 or h.dtype.kind != "f":
            return None, f"{spec.name} needs the head's class probabilities [N, C_s], got {h.dtype} {h.shape}"
        return h, ""
    if h.ndim == 2 and h.dtype.kind == "f":
        return np.argmax(h, axis=1), ""
    if h.ndim == 1 and h.dtype.kind in "biu":
        return h, ""
    return None, f"{spec.name} needs predicted classes [N] or probabilities [N, C_s], got {h.dtype} {h.shape}"


def transferability_matrix(features: Mapping[str, ArrayLike],
                           targets: Mapping[str, tuple[ArrayLike, str]], estimator: str,
                           options: Mapping[str, Any] | None = None, *,
                           heads: Mapping[str, ArrayLike] | None = None, grid: int = DEFAULT_GRID,
                           levels: int | None = None,
                           sources: Sequence[str] | None = None) -> pd.DataFrame:
    """Estimator ``estimator`` for every source x target pair: a DataFrame, NaN where not applicable.

    ``features``: ``{source: [N, D]}``, the representation of the N target images (the same
    images, in the same order, as the labels). ``targets``: ``{target: (labels, kind)}`` with a
    kind of :data:`TARGET_KINDS` (see the module docstring for how each is read; ``grid`` and
    ``levels`` as in :func:`~tasksim.transferability.estimators.dense_to_cells`). ``options``:
    keyword options of the estimator, including those of its ``prepare_*`` function (split off
    as in ``mean_over_cells``). ``heads``: ``{source: probabilities [N, C_s]}`` (or predicted
    classes ``[N]`` for NCE), read by ``leep`` and ``nce`` in place of features; a source
    without a head (or, for feature estimators, without features) gets NaN. ``sources``: the
    row order (default: the features' sources, then the heads' others).

    Each source's shared work (the estimator's ``prepare_*``: covariance inverse, SVD, PCA and
    its mixtures, feature dissimilarities) is done once and reused for every target and cell;
    each target's cells are computed once. Features are converted to float64 once per source.
    The reasons for NaN cells are in ``result.attrs["not_applicable"]``, ``{(source, target):
    reason}``. Errors other than "not applicable" (wrong shapes, all cells constant) are raised
    with the source and target named.
    """
    spec = _est._spec(estimator)
    opts = dict(options or {})
    prep_kw = {k: opts.pop(k) for k in spec.prepare_options if k in opts}
    uses_head = spec.input != "features"
    heads = dict(heads or {})
    if sources is None:
        rows = list(features) + [s for s in heads if s not in features]
    else:
        rows = list(sources)
    readings = {t: _Target(t, labels, kind, grid, levels) for t, (labels, kind) in targets.items()}
    out = pd.DataFrame(np.nan, index=pd.Index(rows, name="source"),
                       columns=pd.Index(list(readings), name="target"))
    why: dict[tuple[str, str], str] = {}
    for s in rows:
        if uses_head:
            if s not in heads:
                x, missing = None, f"{s} has no categorical head"
            else:
                x, missing = _head_input(spec, heads[s])
        elif s not in features:
            x, missing = None, f"no features for {s}"
        else:
            x, missing = np.asarray(features[s], dtype=np.float64), ""
        if x is None:
            for t in readings:
                why[(s, t)] = missing
            continue
        prepared = None
        for t, r in readings.items():
            labels, dense, reason = r.reading(spec.label_kinds)
            if labels is None:
                why[(s, t)] = f"{estimator}: {reason}"
                continue
            if prepared is None and spec.prepare is not None:
                prepared = spec.prepare(x, **prep_kw)
            kw = dict(opts, prepared=prepared) if prepared is not None else opts
            try:
                if dense:
                    value = _est.mean_over_cells(spec.function, x, labels, **kw)
                else:
                    value = spec.function(x, labels, **kw)
            except _est.NotApplicable as exc:
                why[(s, t)] = str(exc)
                continue
            except ValueError as exc:
                raise ValueError(f"{estimator}, source {s}, target {t}: {exc}") from None
            out.loc[s, t] = value
        del prepared
    out.attrs["not_applicable"] = why
    return out
