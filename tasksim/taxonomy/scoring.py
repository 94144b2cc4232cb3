"""Agreement of a task-similarity matrix with a transfer ground truth (docs/methods.md, "Scoring
protocols").

Conventions. A *similarity* is a DataFrame whose index and columns are canonical task names;
entry ``[a, b]`` is the similarity of task ``a`` to task ``b``. For target ``t`` the methods are
read column-wise, ``similarity.loc[candidates, t]`` (symmetric methods are unaffected). A
*ground truth* is a source x target DataFrame as returned by
:func:`tasksim.taxonomy.groundtruth.first_order_matrix` (higher = better transfer), entry ``[s, t]`` = the
transfer from source ``s`` to target ``t``. Any other ground truth of the same form (e.g. an
in-house mini-Taskonomy with different tasks) can be scored by passing the task sets explicitly;
the paper sets are the defaults. Ties in a ranking are broken by the order of the candidate list
(a stable sort).

Two paper protocols:

* **Attribution paper (Song et al. 2019)**: targets = :data:`ATTRIBUTION_TARGETS` (the 20 paper
  tasks minus colorization and inpainting: 18); candidate sources = the other 19 of the 20 paper
  tasks (:data:`ATTRIBUTION_SOURCES`); relevant = top-5 sources by first-order affinity in
  ``all_affinities_16k.pkl`` (the target's own-encoder entry ``X__X`` excluded; ``self`` is not
  a task); prediction = the K most similar other tasks; P@K = hits / K, R@K = hits / 5, averaged
  over targets, K = 1..19 (:data:`K_VALUES`). Random baseline P@K = 5/19.
* **DDS (Dwivedi et al. 2020)**: tasks = :data:`DDS_TASKS` (the 20 minus colorization,
  inpainting, class_scene: 17). For each target, Spearman between the method's column and the
  ground-truth column over the 17 sources, the target's own entry included: the method's
  diagonal against Taskonomy's ``X__X`` (readout on X's own frozen encoder; ``groundtruth_self=
  "own_encoder"``, default) or against ``self__X`` (the fully supervised network,
  ``groundtruth_self="self"``). Score = mean over the 17 targets. Ground truth: unsuffixed
  ``all_affinities.pkl`` (win-rate variant: ``wins_vs_pixels_16k.pkl``).

Tree agreement: cophenetic correlation between two trees over their common tasks, and the
adjusted Rand index of their 4-cluster partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr, weightedtau

from tasksim import tasks as _tasks
from tasksim.taxonomy import trees as _trees

__all__ = [
    "ATTRIBUTION_SOURCES", "ATTRIBUTION_TARGETS", "DDS_TASKS", "N_RELEVANT", "K_VALUES",
    "top_sources", "ranked_candidates", "hits_at_k", "precision_recall_at_k",
    "oracle_precision_at_k", "random_precision_at_k", "dds_per_target", "dds_score",
    "adjusted_rand_index", "cophenetic_correlation", "tree_agreement",
    "TargetMean", "REL_BASELINES", "RANKING_MEASURES", "target_mean", "spearman_per_target",
    "weighted_tau_per_target", "rel_at_1_per_target", "spearman_score", "weighted_tau_score",
    "rel_at_1_score", "ranking_per_target", "ranking_summary", "popularity_scores",
]

#: Candidate sources of the attribution protocol: the 20 paper tasks.
ATTRIBUTION_SOURCES: tuple[str, ...] = _tasks.PAPER_TASKS
#: The 18 targets of the attribution protocol (colorization and inpainting are never targets).
ATTRIBUTION_TARGETS: tuple[str, ...] = tuple(
    t for t in _tasks.PAPER_TASKS if t not in ("colorization", "inpainting"))
#: The 17 tasks of the DDS protocol (also without class_scene, absent from all_affinities.pkl).
DDS_TASKS: tuple[str, ...] = tuple(
    t for t in _tasks.PAPER_TASKS if t not in ("colorization", "inpainting", "class_scene"))
#: Number of relevant (ground-truth) sources per target.
N_RELEVANT = 5
#: K values of the attribution protocol: 1..19.
K_VALUES: tuple[int, ...] = tuple(range(1, 20))


def _ranked(values: np.ndarray, names: Sequence[str]) -> list[str]:
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
        raise ValueError(f"non-finite values for {bad}")
    return [names[i] for i in np.argsort(-values, kind="stable")]


def top_sources(groundtruth: pd.DataFrame, targets: Sequence[str] = ATTRIBUTION_TARGETS,
                sources: Sequence[str] = ATTRIBUTION_SOURCES,
                n: int = N_RELEVANT) -> dict[str, list[str]]:
    """Relevant sources per target: the ``n`` best ``sources`` (target itself excluded) by ground truth."""
    out = {}
    for t in targets:
        cand = [s for s in sources if s != t]
        out[t] = _ranked(groundtruth.loc[cand, t].to_numpy(), cand)[:n]
    return out


def ranked_candidates(similarity: pd.DataFrame, target: str, candidates: Sequence[str]) -> list[str]:
    """``candidates`` (target excluded) sorted by decreasing ``similarity.loc[c, target]``."""
    cand = [c for c in candidates if c != target]
    return _ranked(similarity.loc[cand, target].to_numpy(), cand)


def hits_at_k(similarity: pd.DataFrame, groundtruth: pd.DataFrame,
              targets: Sequence[str] = ATTRIBUTION_TARGETS,
              sources: Sequence[str] = ATTRIBUTION_SOURCES, n_relevant: int = N_RELEVANT,
              ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Targets x K DataFrame of hits: relevant sources among the method's top K other tasks.

    ``ks`` defaults to 1..(len(sources) - 1) (= :data:`K_VALUES` for the paper sets).
    """
    ks = list(range(1, len(sources))) if ks is None else list(ks)
    relevant = top_sources(groundtruth, targets, sources, n_relevant)
    rows = []
    for t in targets:
        order = ranked_candidates(similarity, t, sources)
        cum = np.cumsum([c in relevant[t] for c in order])
        if max(ks) > len(order):
            raise ValueError(f"K={max(ks)} exceeds the {len(order)} candidates of target {t}")
        rows.append([int(cum[k - 1]) for k in ks])
    return pd.DataFrame(rows, index=pd.Index(list(targets), name="target"),
                        columns=pd.Index(ks, name="k"))


def precision_recall_at_k(similarity: pd.DataFrame, groundtruth: pd.DataFrame,
                          targets: Sequence[str] = ATTRIBUTION_TARGETS,
                          sources: Sequence[str] = ATTRIBUTION_SOURCES,
                          n_relevant: int = N_RELEVANT,
                          ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Mean P@K (= hits/K) and R@K (= hits/n_relevant) over targets.

    Returns a DataFrame indexed by K (name ``k``) with columns ``precision`` and ``recall``.
    """
    h = hits_at_k(similarity, groundtruth, targets, sources, n_relevant, ks)
    k = np.asarray(h.columns, dtype=float)
    return pd.DataFrame({"precision": (h / k).mean(axis=0).to_numpy(),
                         "recall": (h / n_relevant).mean(axis=0).to_numpy()},
                        index=pd.Index(h.columns, name="k"))


def oracle_precision_at_k(groundtruth: pd.DataFrame, targets: Sequence[str] = ATTRIBUTION_TARGETS,
                          sources: Sequence[str] = ATTRIBUTION_SOURCES,
                          n_relevant: int = N_RELEVANT,
                          ks: Sequence[int] | None = None) -> pd.Series:
    """P@K of the ground-truth ranking itself (1 up to K = n_relevant, then n_relevant / K)."""
    return precision_recall_at_k(groundtruth, groundtruth, targets, sources, n_relevant,
                                 ks)["precision"]


def random_precision_at_k(n_candidates: int = len(ATTRIBUTION_SOURCES) - 1,
                          n_relevant: int = N_RELEVANT) -> float:
    """Expected P@K of a random ranking, the same for every K: n_relevant / n_candidates (5/19)."""
    return n_relevant / n_candidates


def dds_per_target(similarity: pd.DataFrame, groundtruth: pd.DataFrame,
                   tasks: Sequence[str] = DDS_TASKS,
                   groundtruth_self: str = "own_encoder", *,
                   targets: Sequence[str] | None = None, own_entry: bool = True) -> pd.Series:
    """Spearman, per target, between the method's column and the ground-truth column over ``tasks``.

    ``tasks`` are the sources (rows); ``targets`` (columns) default to ``tasks``. With
    ``own_entry=True`` (the DDS protocol) a target that is also a source keeps its own entry:
    the method's ``similarity[t, t]`` against ``groundtruth[t, t]`` (``X__X``, own frozen
    encoder; default) or against ``groundtruth["self", t]`` (``groundtruth_self="self"``).
    ``own_entry=False`` leaves that entry out, so only the other sources are ranked (a matrix
    whose diagonal is its maximum gains nothing from it). Returns a Series indexed by target.
    """
    if groundtruth_self not in ("own_encoder", "self"):
        raise ValueError(f"groundtruth_self must be 'own_encoder' or 'self', got {groundtruth_self!r}")
    tasks = list(tasks)
    targets = tasks if targets is None else list(targets)
    out = {}
    for t in targets:
        src = tasks if own_entry else [s for s in tasks if s != t]
        if len(src) < 2:
            raise ValueError(f"target {t}: fewer than 2 sources to rank ({src})")
        m = similarity.loc[src, t].to_numpy(dtype=float)
        g = groundtruth.loc[src, t].to_numpy(dtype=float).copy()
        if groundtruth_self == "self" and t in src:
            g[src.index(t)] = float(groundtruth.loc["self", t])
        if not (np.isfinite(m).all() and np.isfinite(g).all()):
            raise ValueError(f"non-finite entries in the column of target {t}")
        out[t] = float(spearmanr(m, g).statistic)
    return pd.Series(out, name="spearman", dtype=float).rename_axis("target")


def dds_score(similarity: pd.DataFrame, groundtruth: pd.DataFrame,
              tasks: Sequence[str] = DDS_TASKS, groundtruth_self: str = "own_encoder", *,
              targets: Sequence[str] | None = None, own_entry: bool = True) -> float:
    """Mean over targets of :func:`dds_per_target` (the DDS paper's agreement score)."""
    return float(dds_per_target(similarity, groundtruth, tasks, groundtruth_self, targets=targets,
                                own_entry=own_entry).mean())


def adjusted_rand_index(a: Sequence, b: Sequence) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) of two flat partitions of the same items.

    1 for identical partitions (up to relabelling), about 0 for independent ones. Two trivial
    identical partitions (all one cluster, or all singletons) give 1.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("partitions must be 1-D and of equal length")
    n = a.size
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)

    def pairs(x):
        x = np.asarray(x, dtype=float)
        return float((x * (x - 1) / 2).sum())

    sum_ij = pairs(table)
    sum_a, sum_b = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    total = n * (n - 1) / 2
    expected = sum_a * sum_b / total if total else 0.0
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return (sum_ij - expected) / (maximum - expected)


def cophenetic_correlation(coph_a: pd.DataFrame, coph_b: pd.DataFrame) -> float:
    """Pearson correlation of the upper triangles of two labelled cophenetic matrices over their common labels."""
    common = [x for x in coph_a.index if x in set(coph_b.index)]
    if len(common) < 3:
        raise ValueError(f"need at least 3 common tasks, got {common}")
    a = coph_a.loc[common, common].to_numpy(dtype=float)
    b = coph_b.loc[common, common].to_numpy(dtype=float)
    iu = np.triu_indices(len(common), 1)
    return float(np.corrcoef(a[iu], b[iu])[0, 1])


def tree_agreement(z_a: np.ndarray, labels_a: Sequence[str], z_b: np.ndarray,
                   labels_b: Sequence[str], n_clusters: int = 4) -> dict[str, float]:
    """Agreement of two trees (linkage matrices with leaf labels) over their common tasks.

    ``cophenetic_correlation``: :func:`cophenetic_correlation` of the two cophenetic matrices.
    ``adjusted_rand``: :func:`adjusted_rand_index` of the two ``n_clusters`` partitions
    (:func:`tasksim.taxonomy.trees.cut` of each full tree, then restricted to the common tasks).
    ``n_common``: number of common tasks.
    """
    la, lb = list(labels_a), list(labels_b)
    ca = pd.DataFrame(_trees.cophenetic_matrix(z_a), index=la, columns=la)
    cb = pd.DataFrame(_trees.cophenetic_matrix(z_b), index=lb, columns=lb)
    common = [x for x in la if x in set(lb)]
    pa = dict(zip(la, _trees.cut(z_a, n_clusters)))
    pb = dict(zip(lb, _trees.cut(z_b, n_clusters)))
    return {
        "cophenetic_correlation": cophenetic_correlation(ca, cb),
        "adjusted_rand": adjusted_rand_index([pa[x] for x in common], [pb[x] for x in common]),
        "n_common": float(len(common)),
    }


# ------------------------------------------------------------------------------------------------
# Ranking measures of the transferability literature (Agostinelli et al., ECCV 2022)
#
# A *score* matrix is source x target (entry [s, t] = how good the method expects source s to be
# for target t, higher = better), read against a ground truth of the same form. NaN entries of
# either are missing (an estimator "not applicable", a transfer not measured): a target's column
# is scored over the sources where both are finite, and a target with fewer than 2 such sources
# is not scored (NaN in the per-target Series). The means report how many targets were scored.


class TargetMean(NamedTuple):
    """Mean of a per-target measure over the targets it could score."""

    value: float
    n_scored: int
    n_targets: int


#: Conventions of Rel@1 for affinities of any sign (:func:`rel_at_1_per_target`).
REL_BASELINES: tuple[str, ...] = ("zero", "min")

#: Columns of :func:`ranking_per_target` / rows of :func:`ranking_summary`.
RANKING_MEASURES: tuple[str, ...] = ("spearman", "weighted_tau", "rel_at_1")


def _columns(scores: pd.DataFrame, groundtruth: pd.DataFrame, sources: Sequence[str] | None,
             targets: Sequence[str] | None, own_entry: bool, groundtruth_self: str):
    """Per target: the sources kept (finite score and ground truth, source order), their scores
    and ground-truth values; ``None`` in place of the arrays when fewer than 2 remain."""
    if groundtruth_self not in ("own_encoder", "self"):
        raise ValueError(f"groundtruth_self must be 'own_encoder' or 'self', got {groundtruth_self!r}")
    sources = list(scores.index) if sources is None else list(sources)
    targets = list(scores.columns) if targets is None else list(targets)
    for t in targets:
        src = sources if own_entry else [s for s in sources if s != t]
        m = scores.loc[src, t].to_numpy(dtype=float)
        g = groundtruth.loc[src, t].to_numpy(dtype=float).copy()
        if groundtruth_self == "self" and t in src:
            g[src.index(t)] = float(groundtruth.loc["self", t])
        keep = np.isfinite(m) & np.isfinite(g)
        names = [s for s, k in zip(src, keep) if k]
        if keep.sum() < 2:
            yield t, names, None, None
        else:
            yield t, names, m[keep], g[keep]


def _per_target(measure, name: str, scores, groundtruth, sources, targets, own_entry,
                groundtruth_self) -> pd.Series:
    out = {t: (np.nan if m is None else measure(t, m, g))
           for t, _, m, g in _columns(scores, groundtruth, sources, targets, own_entry, groundtruth_self)}
    return pd.Series(out, name=name, dtype=float).rename_axis("target")


def _rank_correlation(function, m: np.ndarray, g: np.ndarray) -> float:
    if np.ptp(m) == 0 or np.ptp(g) == 0:
        return np.nan                     # a constant column ranks nothing
    return float(function(m, g))


def target_mean(per_target: pd.Series) -> TargetMean:
    """:class:`TargetMean` of a per-target Series: the mean over its finite entries and their count."""
    finite = per_target[np.isfinite(per_target.to_numpy(dtype=float))]
    return TargetMean(float(finite.mean()) if len(finite) else np.nan, int(len(finite)), int(len(per_target)))


def spearman_per_target(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                        sources: Sequence[str] | None = None, *,
                        targets: Sequence[str] | None = None, own_entry: bool = True,
                        groundtruth_self: str = "own_encoder") -> pd.Series:
    """Spearman, per target, between the method's and the ground truth's column, NaN-aware.

    The same measure as :func:`dds_per_target`, with the conventions of the ranking measures:
    ``sources`` (rows) default to the score matrix's index, ``targets`` to its columns;
    ``own_entry`` and ``groundtruth_self`` as in :func:`dds_per_target`; sources with a missing
    (NaN) score or ground truth are left out of their target's column, and a target with fewer
    than 2 sources left, or a constant column, gives NaN (not scored).
    """
    def measure(t, m, g):
        return _rank_correlation(lambda a, b: spearmanr(a, b).statistic, m, g)

    return _per_target(measure, "spearman", scores, groundtruth, sources, targets, own_entry,
                       groundtruth_self)


def ground_truth_ranks(g: np.ndarray) -> np.ndarray:
    """Rank of each source in the ground truth as the weighted tau weighs it: 0 = the best, ties
    broken by source order."""
    g = np.asarray(g, dtype=float)
    rank = np.empty(g.size, dtype=np.intp)
    rank[np.argsort(-g, kind="stable")] = np.arange(g.size)
    return rank


def weighted_tau_rows(g: np.ndarray, scores: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Weighted Kendall tau of the ground truth ``g`` [k] against each row of ``scores`` [P, k].

    The value of ``scipy.stats.weightedtau(g, row, rank=rank)`` (hyperbolic weigher, additive
    weights) for every row at once: each pair of sources weighs ``1 / (rank_i + 1) + 1 /
    (rank_j + 1)`` and the statistic is ``sum w sgn(dg) sgn(ds) / sqrt(sum_{dg != 0} w *
    sum_{ds != 0} w)``, so pairs tied in either ranking count neither for nor against. Used for
    permutation nulls, where scipy's one call per row dominates the cost; NaN for a row whose
    scores are all equal."""
    g = np.asarray(g, dtype=float)
    y = np.atleast_2d(np.asarray(scores, dtype=float))
    i, j = np.triu_indices(g.size, k=1)
    inv = 1.0 / (np.asarray(rank, dtype=float) + 1.0)
    w = inv[i] + inv[j]
    sg = np.sign(g[i] - g[j])
    sy = np.sign(y[:, i] - y[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sy @ (w * sg)) / np.sqrt(np.sum(w * (sg != 0)) * ((sy != 0) @ w))


def weighted_tau_per_target(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                            sources: Sequence[str] | None = None, *,
                            targets: Sequence[str] | None = None, own_entry: bool = True,
                            groundtruth_self: str = "own_encoder") -> pd.Series:
    """Weighted Kendall tau, per target, weighing the top of the ground-truth ranking.

    ``scipy.stats.weightedtau(groundtruth, scores, rank=r)`` with the default hyperbolic weigher
    ``1 / (r + 1)`` and additive weights: ``r`` is each source's rank in the ground truth (0 =
    the best source, ties broken by source order), so a pair of sources weighs
    ``1 / (r_i + 1) + 1 / (r_j + 1)`` and swapping the two best sources costs more than swapping
    two poor ones. This is not scipy's default ``rank=True``, which averages the ranking by the
    ground truth with the ranking by the method's own scores. Ties in the scores are handled by
    scipy (a tied pair counts neither for nor against). 1 for a method that orders the sources
    as the ground truth does, -1 for the reverse order. Other conventions as in
    :func:`spearman_per_target`.
    """
    def measure(t, m, g):
        rank = ground_truth_ranks(g)
        return _rank_correlation(lambda a, b: weightedtau(b, a, rank=rank).statistic, m, g)

    return _per_target(measure, "weighted_tau", scores, groundtruth, sources, targets, own_entry,
                       groundtruth_self)


def rel_at_1_per_target(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                        sources: Sequence[str] | None = None, *,
                        targets: Sequence[str] | None = None, own_entry: bool = True,
                        groundtruth_self: str = "own_encoder", baseline: str = "zero") -> pd.Series:
    """Rel@1, per target: ground truth of the source the method ranks first, relative to the best.

    ``(g[chosen] - b) / (max(g) - b)`` over the target's scored sources, where ``chosen`` has the
    highest score (ties: the first in source order) and ``b`` is the baseline:

    * ``baseline="zero"`` (the literature's ratio ``g[chosen] / max(g)``): defined when the
      ground truth is non-negative with a positive best, as AHP affinities and win rates are;
      a target with a negative value or no positive one raises ``ValueError``;
    * ``baseline="min"``: ``b`` = the worst scored source's ground truth, so the value runs from
      0 (the method picks the worst source) to 1 (it picks a best one) whatever the sign of the
      affinities (e.g. negative losses); a column whose sources are all equal gives 1.

    1 means the method's first choice is as good as the best source. A method whose scores of the
    target's sources are all equal chooses nothing: NaN (not scored), like a constant column of
    the rank measures. Other conventions as in :func:`spearman_per_target`.
    """
    if baseline not in REL_BASELINES:
        raise ValueError(f"baseline must be one of {REL_BASELINES}, got {baseline!r}")

    def measure(t, m, g):
        if np.ptp(m) == 0:
            return np.nan                      # a constant column chooses nothing: not scored
        chosen = g[int(np.argmax(m))]          # argmax: the first of tied maxima
        best = float(g.max())
        if baseline == "zero":
            if g.min() < 0 or best <= 0:
                raise ValueError(f"target {t}: Rel@1 with baseline='zero' needs non-negative ground "
                                 f"truth with a positive best (min {g.min():.4g}, max {best:.4g}); "
                                 f"use baseline='min'")
            return float(chosen / best)
        low = float(g.min())
        return 1.0 if best == low else float((chosen - low) / (best - low))

    return _per_target(measure, "rel_at_1", scores, groundtruth, sources, targets, own_entry,
                       groundtruth_self)


def spearman_score(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                   sources: Sequence[str] | None = None, **kwargs) -> TargetMean:
    """Mean of :func:`spearman_per_target` over the scored targets, with their count."""
    return target_mean(spearman_per_target(scores, groundtruth, sources, **kwargs))


def weighted_tau_score(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                       sources: Sequence[str] | None = None, **kwargs) -> TargetMean:
    """Mean of :func:`weighted_tau_per_target` over the scored targets, with their count."""
    return target_mean(weighted_tau_per_target(scores, groundtruth, sources, **kwargs))


def rel_at_1_score(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                   sources: Sequence[str] | None = None, **kwargs) -> TargetMean:
    """Mean of :func:`rel_at_1_per_target` over the scored targets, with their count."""
    return target_mean(rel_at_1_per_target(scores, groundtruth, sources, **kwargs))


def ranking_per_target(scores: pd.DataFrame, groundtruth: pd.DataFrame,
                       sources: Sequence[str] | None = None, *,
                       targets: Sequence[str] | None = None, own_entry: bool = True,
                       groundtruth_self: str = "own_encoder", baseline: str = "zero") -> pd.DataFrame:
    """The three ranking measures per target (columns :data:`RANKING_MEASURES`) and ``n_sources``,
    the number of sources each target was scored over (NaN-aware, as the single measures)."""
    kw = dict(targets=targets, own_entry=own_entry, groundtruth_self=groundtruth_self)
    out = pd.DataFrame({
        "spearman": spearman_per_target(scores, groundtruth, sources, **kw),
        "weighted_tau": weighted_tau_per_target(scores, groundtruth, sources, **kw),
        "rel_at_1": rel_at_1_per_target(scores, groundtruth, sources, baseline=baseline, **kw),
    })
    out["n_sources"] = pd.Series({t: len(names) for t, names, _, _ in
                                  _columns(scores, groundtruth, sources, targets, own_entry,
                                           groundtruth_self)}, dtype=int)
    return out.rename_axis("target")


def ranking_summary(per_target: pd.DataFrame) -> pd.DataFrame:
    """Mean of each measure column of :func:`ranking_per_target` over its scored targets:
    rows = measures, columns ``value``, ``n_scored``, ``n_targets``."""
    rows = {m: target_mean(per_target[m]) for m in RANKING_MEASURES if m in per_target}
    return pd.DataFrame.from_dict({m: r._asdict() for m, r in rows.items()}, orient="index") \
        .rename_axis("measure")


def popularity_scores(groundtruth: pd.DataFrame, sources: Sequence[str] | None = None,
                      targets: Sequence[str] | None = None, *, own_entry: bool = False) -> pd.DataFrame:
    """Popularity floor: each source scored, per target, by its mean rank over the *other* targets.

    For every target ``u`` of ``targets`` the sources are ranked by their ground truth (average
    ranks of ties, rescaled to ``[0, 1]`` with 0 = best, so columns with missing entries stay
    comparable); with ``own_entry=False`` (default) source ``u`` is left out of column ``u``'s
    ranking (its own encoder would otherwise make every task a "popular" source). The score of
    source ``s`` for target ``t`` is 1 minus the mean of its rescaled ranks over the columns
    ``u != t`` in which it was ranked: leave one target out, so column ``t`` of the ground truth
    never enters the scores for ``t``. Higher = better, like any method; NaN where a source was
    ranked in no other column. Returns a source x target DataFrame (``sources`` default to the
    ground truth's index, ``targets`` to its columns) that every ranking measure accepts.
    """
    sources = list(groundtruth.index) if sources is None else list(sources)
    targets = list(groundtruth.columns) if targets is None else list(targets)
    ranks = pd.DataFrame(np.nan, index=sources, columns=targets)
    for u in targets:
        g = groundtruth.loc[sources, u].astype(float)
        if not own_entry and u in sources:
            g[u] = np.nan
        finite = g[np.isfinite(g.to_numpy())]
        if len(finite) >= 2:
            ranks.loc[finite.index, u] = (rankdata(-finite.to_numpy()) - 1) / (len(finite) - 1)
    out = pd.DataFrame(np.nan, index=pd.Index(sources, name="source"),
                       columns=pd.Index(targets, name="target"))
    for t in targets:
        out[t] = 1.0 - ranks.drop(columns=t).mean(axis=1, skipna=True)
    return out
