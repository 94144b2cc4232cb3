"""One comparison of both method families against the transfer ground truth, between a noise
ceiling and a floor (docs/methods.md, "Comparing both families").

Every score matrix is read as source x target (entry ``[s, t]``: how good the method expects
source ``s`` to be for target ``t``): a label-free task x task similarity matrix with its rows as
the sources, or a label-based estimator's matrix. Each is scored against the ground truth by the
ranking measures of :mod:`tasksim.taxonomy.scoring` (:func:`~tasksim.taxonomy.scoring.ranking_per_target`:
per-target Spearman, weighted Kendall tau, Rel@1 with the ``min`` baseline) with the target's own
entry left out, so a similarity matrix gains nothing from its diagonal. Two reference rows sit in
the same table, computed the same way: the noise ceiling (the split-half agreement of the measured
affinity, :func:`tasksim.minitaskonomy.ceiling.noise_ceiling`) and the popularity floor
(:func:`tasksim.taxonomy.scoring.popularity_scores`, a matrix that knows nothing of the target).

Means are over the targets a row could score: a NaN entry (an estimator that does not apply, a
source missing from a matrix) leaves its source out of the target's column, and a target with
fewer than two sources left is not scored; ``n_scored`` says how many were.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tasksim import tasks as _tasks
from tasksim.taxonomy import scoring

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["GROUPS", "FAMILIES", "CEILING", "POPULARITY", "CEILING_SPLITS", "COLUMNS", "Comparison",
           "target_group", "group_means", "summarize", "compare", "ceiling_comparison",
           "popularity_comparison", "spearman_interval", "similarity_interval", "comparison_row",
           "comparison_table", "comparison_figure", "method_comparison_files"]

#: Target groups of the per-group means: the task groups of :mod:`tasksim.tasks`, then ``other``
#: (multi-image tasks and names that are not Taskonomy tasks).
GROUPS: tuple[str, ...] = (*_tasks.GROUPS, "other")
#: The ``family`` column's values, in table order.
FAMILIES: tuple[str, ...] = ("label-free", "label-based", "reference")
#: ``method`` of the two reference rows.
CEILING = "noise ceiling (split halves)"
POPULARITY = "popularity (no model)"
#: Seeded splits of the test images the noise ceiling averages over.
CEILING_SPLITS = 10
#: Columns of :func:`comparison_table`, in order.
COLUMNS: tuple[str, ...] = ("family", "method", "layer", *scoring.RANKING_MEASURES, "spearman_low",
                            "spearman_high", "n_scored", "n_targets", *(f"spearman_{g}" for g in GROUPS))


class Comparison(NamedTuple):
    """One score matrix against the ground truth: per target and summarised."""

    per_target: pd.DataFrame  # index: target; columns RANKING_MEASURES, n_sources, group
    summary: dict[str, Any]   # :func:`summarize`


def target_group(name: str) -> str:
    """The group of a target task (:data:`GROUPS`); ``other`` for a name with no task group."""
    g = _tasks.group(name)
    return g if g in GROUPS else "other"


def _with_groups(per_target: pd.DataFrame) -> pd.DataFrame:
    out = per_target.copy()
    out["group"] = [target_group(str(t)) for t in out.index]
    return out.rename_axis("target")


def group_means(per_target: pd.DataFrame) -> pd.DataFrame:
    """Mean of each ranking measure over the scored targets of each group: rows :data:`GROUPS`,
    columns :data:`~tasksim.taxonomy.scoring.RANKING_MEASURES` (NaN where a group has no scored
    target)."""
    groups = per_target["group"] if "group" in per_target else \
        pd.Series([target_group(str(t)) for t in per_target.index], index=per_target.index)
    return pd.DataFrame({m: [scoring.target_mean(per_target.loc[groups == g, m]).value for g in GROUPS]
                         for m in scoring.RANKING_MEASURES}, index=pd.Index(GROUPS, name="group"))


def summarize(per_target: pd.DataFrame) -> dict[str, Any]:
    """Target means of a per-target table (columns :data:`~tasksim.taxonomy.scoring.RANKING_MEASURES`):
    each measure's mean over its scored targets, ``n_scored`` (targets with a Spearman, the
    headline), ``n_targets``, and the per-group Spearman means ``spearman_<group>``."""
    means = {m: scoring.target_mean(per_target[m]) for m in scoring.RANKING_MEASURES}
    out: dict[str, Any] = {m: r.value for m, r in means.items()}
    out["n_scored"] = means["spearman"].n_scored
    out["n_targets"] = means["spearman"].n_targets
    groups = group_means(per_target)
    out.update({f"spearman_{g}": float(groups.loc[g, "spearman"]) for g in GROUPS})
    return out


def _frame(matrix: pd.DataFrame, sources: Sequence[str], targets: Sequence[str]) -> pd.DataFrame:
    return matrix.astype(float).reindex(index=list(sources), columns=list(targets))


def compare(scores: pd.DataFrame, groundtruth: pd.DataFrame, sources: Sequence[str] | None = None,
            targets: Sequence[str] | None = None) -> Comparison:
    """A source x target score matrix against the ground truth, the target's own entry left out.

    ``sources`` default to the score matrix's rows found in the ground truth, ``targets`` to its
    columns found there. Both matrices are read on exactly these sources and targets: a source or
    target that a matrix lacks counts as missing (NaN), never as 0. Per target:
    :func:`~tasksim.taxonomy.scoring.ranking_per_target` (``own_entry=False``, Rel@1 with
    ``baseline="min"``) plus each target's ``group``; summary: :func:`summarize`.
    """
    sources = [s for s in scores.index if s in groundtruth.index] if sources is None else list(sources)
    targets = [t for t in scores.columns if t in groundtruth.columns] if targets is None else list(targets)
    per = scoring.ranking_per_target(_frame(scores, sources, targets), _frame(groundtruth, sources, targets),
                                     own_entry=False, baseline="min")
    per = _with_groups(per)
    return Comparison(per, summarize(per))


def spearman_interval(bootstrap: np.ndarray, index: Sequence[str], columns: Sequence[str],
                      groundtruth: pd.DataFrame, sources: Sequence[str], targets: Sequence[str],
                      confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap percentile interval of :func:`compare`'s mean Spearman over the replicates
    ``[B, len(index), len(columns)]`` of an estimator matrix (resampled probe images; the ground
    truth fixed); ``(nan, nan)`` when no replicate scores a target."""
    from tasksim.taxonomy.uncertainty import percentile_interval

    means = np.array([compare(pd.DataFrame(b, index=list(index), columns=list(columns)), groundtruth,
                              sources, targets).summary["spearman"] for b in bootstrap], dtype=float)
    if not np.isfinite(means).any():
        return np.nan, np.nan
    return percentile_interval(means, confidence)


def similarity_interval(similarity_fn: Callable[[np.ndarray], pd.DataFrame], indices: np.ndarray,
                        groundtruth: pd.DataFrame, sources: Sequence[str], targets: Sequence[str],
                        confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap percentile interval of :func:`compare`'s mean Spearman for a label-free method:
    its matrix rebuilt by ``similarity_fn(index)`` (rows read as sources) on each resample of
    ``indices`` ``[B, N]`` (the estimators' resamples, so both families are resampled alike);
    ``(nan, nan)`` when no resample scores a target."""
    from tasksim.taxonomy.uncertainty import percentile_interval

    means = np.array([compare(similarity_fn(idx), groundtruth, sources, targets).summary["spearman"]
                      for idx in indices], dtype=float)
    if not np.isfinite(means).any():
        return np.nan, np.nan
    return percentile_interval(means, confidence)


def ceiling_comparison(losses: Mapping[str, ArrayLike], loss_sources: Sequence[str],
                       sources: Sequence[str], targets: Sequence[str], *,
                       n_splits: int = CEILING_SPLITS, seed: int = 0) -> Comparison:
    """The noise ceiling as a comparison row: :func:`~tasksim.minitaskonomy.ceiling.noise_ceiling`
    (each half of the test images' affinity scored against the other half, both directions, over
    ``n_splits`` seeded splits) with the conventions of :func:`compare` (own entry left out, Rel@1
    with the ``min`` baseline), scored over ``sources``.

    ``losses``: ``{target: [len(loss_sources), N_test]}`` (``transfer/losses.npz``); the halves'
    affinities are built over all ``loss_sources``, as the full affinity is. Targets without
    losses are not scored."""
    from tasksim.minitaskonomy.ceiling import noise_ceiling

    have = [t for t in targets if t in losses]
    score_sources = [s for s in sources if s in set(loss_sources)]
    if have and len(score_sources) >= 2:
        per = noise_ceiling({t: losses[t] for t in have}, list(loss_sources), score_sources=score_sources,
                            targets=have, own_entry=False, n_splits=n_splits, seed=seed, baseline="min")
    else:
        per = pd.DataFrame(columns=list(scoring.RANKING_MEASURES), dtype=float)
    per = per.reindex(list(targets))[list(scoring.RANKING_MEASURES)]
    per = _with_groups(per)
    return Comparison(per, summarize(per))


def popularity_comparison(groundtruth: pd.DataFrame, sources: Sequence[str],
                          targets: Sequence[str]) -> Comparison:
    """The popularity floor as a comparison row: :func:`~tasksim.taxonomy.scoring.popularity_scores`
    of the ground truth over ``sources`` and ``targets`` (leave one target out), scored by
    :func:`compare`."""
    g = _frame(groundtruth, sources, targets)
    return compare(scoring.popularity_scores(g, list(sources), list(targets)), g, sources, targets)


def comparison_row(family: str, method: str, layer: str, comparison: Comparison,
                   interval: tuple[float, float] = (np.nan, np.nan)) -> dict[str, Any]:
    """One row of :func:`comparison_table`; ``interval``: the mean Spearman's bootstrap interval
    over the probe images, where there is one."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return {"family": family, "method": method, "layer": layer, **comparison.summary,
            "spearman_low": float(interval[0]), "spearman_high": float(interval[1])}


def comparison_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of :func:`comparison_row` as one table (columns :data:`COLUMNS`), ordered by family
    (:data:`FAMILIES`), then as given."""
    table = pd.DataFrame(list(rows), columns=list(COLUMNS))
    order = {f: i for i, f in enumerate(FAMILIES)}
    table = table.iloc[np.argsort([order[f] for f in table["family"]], kind="stable")].copy()
    table[["n_scored", "n_targets"]] = table[["n_scored", "n_targets"]].astype(int)
    return table.reset_index(drop=True)


_FAMILY_COLOURS = {"label-free": "#0072B2", "label-based": "#D55E00"}


def comparison_figure(table: pd.DataFrame, title: str, subtitle: str = "") -> Figure:
    """Horizontal bars of the mean per-target Spearman of every method x layer of a
    :func:`comparison_table`, grouped by family, with the noise ceiling and the popularity floor
    as vertical lines; a row that scored no target says so in place of its bar."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from tasksim.taxonomy.figures import heading, new_figure

    methods = table[table["family"] != "reference"].reset_index(drop=True)
    refs = table[table["family"] == "reference"].set_index("method")
    # one row per method x layer, top to bottom, a gap between the families
    y, pos, previous = [], 0.0, None
    for f in methods["family"]:
        pos += 1.0 if previous in (None, f) else 1.6
        y.append(-pos)
        previous = f
    y = np.asarray(y)
    fig = new_figure((8.0, 2.2 + 0.3 * max(len(methods), 1)))
    ax = fig.add_subplot()
    values = methods["spearman"].to_numpy(dtype=float)
    finite = np.isfinite(values)
    colours = np.array([_FAMILY_COLOURS.get(f, "#555555") for f in methods["family"]])
    ax.barh(y[finite], values[finite], color=colours[finite], height=0.7)
    low = methods["spearman_low"].to_numpy(dtype=float) if "spearman_low" in methods else np.full(len(y), np.nan)
    high = methods["spearman_high"].to_numpy(dtype=float) if "spearman_high" in methods else np.full(len(y), np.nan)
    has = finite & np.isfinite(low) & np.isfinite(high)
    if has.any():  # the percentile interval need not contain the point estimate: drawn as low..high
        ax.hlines(y[has], low[has], high[has], color="#222222", linewidth=1.0)
        ax.plot(np.r_[low[has], high[has]], np.r_[y[has], y[has]], "|", color="#222222", markersize=6)
    labels = [f"{r.method} / {r.layer}" if r.layer else str(r.method) for r in methods.itertuples()]
    ax.set_yticks(y, labels, fontsize=8)
    for tick, c in zip(ax.get_yticklabels(), colours):
        tick.set_color(c)
    for yi, r, hi in zip(y, methods.itertuples(), high):
        n = f"{r.n_scored}/{r.n_targets} targets"
        if not np.isfinite(r.spearman):
            ax.text(0.02, yi, f"no target scored ({n})",
                    va="center", ha="left", fontsize=7, color="#555555")
        elif r.spearman >= 0.3:   # inside the bar, from its base, clear of the interval at its end
            ax.text(0.02, yi, f"{r.spearman:.2f} ({n})", va="center", ha="left", fontsize=7, color="white")
        else:                     # beside the bar and its interval
            right = max(r.spearman, 0.0, hi if np.isfinite(hi) else -1.0)
            ax.text(right + 0.02, yi, f"{r.spearman:.2f} ({n})", va="center", ha="left", fontsize=7)
    handles = [Patch(color=_FAMILY_COLOURS[f], label=f"{f} methods")
               for f in ("label-free", "label-based") if (methods["family"] == f).any()]
    for name, style in ((CEILING, ("#000000", "--")), (POPULARITY, ("#777777", ":"))):
        if name in refs.index and np.isfinite(refs.loc[name, "spearman"]):
            v = float(refs.loc[name, "spearman"])
            ax.axvline(v, color=style[0], linestyle=style[1], linewidth=1.5)
            handles.append(Line2D([], [], color=style[0], linestyle=style[1], label=f"{name}: {v:.2f}"))
    ax.axvline(0, color="#bbbbbb", linewidth=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim((y.min() if len(y) else -1) - 0.8, -0.2)
    ax.set_xlabel("mean per-target Spearman: the method's ranking of the sources vs the ground truth's\n"
                  "(black: bootstrap interval over the probe images)", fontsize=8)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    ax.set_title(heading(fig, title, subtitle), fontsize=9)
    return fig


# ------------------------------------------------------------------------------------------------
# The rule's step (path in, path out). Kept here, not in stage.py, so that the estimator jobs'
# code digests do not change with it.

def method_comparison_files(similarity_files: Sequence[PathLike], matrix_files: Sequence[PathLike],
                            groundtruth: PathLike, out_csv: PathLike, out_png: PathLike, *,
                            sources: Sequence[str], losses: PathLike | None, groundtruth_label: str,
                            run: str, seed: int, n_splits: int = CEILING_SPLITS,
                            confidence: float = 0.95, n_bootstrap: int = 0,
                            rdm_files: Mapping[str, PathLike] | None = None,
                            activation_files: Mapping[str, PathLike] | None = None,
                            options: Mapping[str, Mapping[str, Any]] | None = None,
                            max_mb: int = 4000, locking: bool | None = None) -> pd.DataFrame:
    """Both method families against the ground truth in one table (CSV) and one figure (PNG).

    Every similarity file (``R/similarity/{method}/{layer}.h5``) and every estimator matrix
    (``R/transferability/{estimator}/{layer}.h5``) is scored by :func:`compare` over the same
    sources (those of ``sources`` in the ground truth's rows) and targets (the ground truth's
    columns); with ``losses`` (``transfer/losses.npz``) the noise ceiling's row is added, and the
    popularity floor's always. Estimator matrices with bootstrap replicates get the mean
    Spearman's interval (level ``confidence``); with ``n_bootstrap`` > 0 each label-free matrix
    is rebuilt on the same ``n_bootstrap`` resamples of the probe images (seed ``seed``, as the
    estimators draw them) the way its method-table entry declares
    (:func:`tasksim.taxonomy.bootstrap.bootstrap_source`: stored RDMs ``rdm_files``, per-image
    similarities, or the activations ``activation_files``; the analysis's ``options[method]``),
    and gets the same interval; where it cannot be rebuilt the log says why and the interval is
    empty. Both files are written atomically."""
    from tasksim.io import atomic_path
    from tasksim.minitaskonomy.ceiling import read_losses
    from tasksim.similarity.files import read_similarity
    from tasksim.taxonomy.figures import save
    from tasksim.taxonomy.files import read_groundtruth_csv

    from .files import read_matrix

    truth = read_groundtruth_csv(groundtruth)
    src = [s for s in sources if s in truth.index]
    targets = list(truth.columns)
    if len(src) < 2 or not targets:
        raise ValueError(f"{os.fspath(groundtruth)} has {len(src)} of the sources {list(sources)} and "
                         f"{len(targets)} target(s); at least 2 sources and 1 target are needed")
    rows = []
    for path in similarity_files:
        sf = read_similarity(path)
        method, layer = str(sf.attrs["method"]), str(sf.attrs["layer"])
        interval = (np.nan, np.nan)
        if n_bootstrap > 0:
            from tasksim.taxonomy.bootstrap import bootstrap_source

            from .stage import resamples

            models = list(sf.matrix.index)
            fn, _, reason = bootstrap_source(method, models, sf, rdm_files, activation_files, layer,
                                             (options or {}).get(method, {}), max_mb)
            if fn is None:
                log.warning("%s %s: no interval in the comparison: %s", method, layer, reason)
            else:
                interval = similarity_interval(fn, resamples(sf.n_images, n_bootstrap, seed), truth,
                                               src, targets, confidence)
        rows.append(comparison_row("label-free", method, layer, compare(sf.matrix, truth, src, targets),
                                   interval))
    for path in matrix_files:
        m = read_matrix(path, locking)
        interval = (np.nan, np.nan) if m.bootstrap is None else spearman_interval(
            m.bootstrap, m.matrix.index, m.matrix.columns, truth, src, targets, confidence)
        rows.append(comparison_row("label-based", m.estimator, m.layer, compare(m.matrix, truth, src, targets),
                                   interval))
    if losses is not None:
        loss_sources, per_target = read_losses(losses)
        rows.append(comparison_row("reference", CEILING, "", ceiling_comparison(
            per_target, loss_sources, src, targets, n_splits=n_splits, seed=seed)))
    rows.append(comparison_row("reference", POPULARITY, "", popularity_comparison(truth, src, targets)))
    table = comparison_table(rows)
    for r in table.itertuples():
        log.info("%s %s %s: mean Spearman %.3f over %d of %d targets", r.family, r.method, r.layer,
                 r.spearman, r.n_scored, r.n_targets)
    with atomic_path(out_csv, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    title = f"Mean per-target Spearman vs the {groundtruth_label} (own entry left out)"
    subtitle = f"{run} - {len(src)} sources, {len(targets)} targets"
    save(comparison_figure(table, title, subtitle), out_png)
    return table
