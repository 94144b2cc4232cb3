"""Figures of the taxonomy stage: heatmaps, P@K / R@K curves, DDS bars, scatter plots.

Every function returns a :class:`matplotlib.figure.Figure` on a non-interactive Agg canvas (no
pyplot state), with a title, axis labels and a legend or colour bar, so that a figure is readable
without the code. :func:`save` writes PNG and PDF. Dendrograms: :func:`tasksim.taxonomy.trees.dendrogram_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from tasksim import tasks as _tasks  # noqa: E402
from tasksim.io import atomic_path  # noqa: E402
from tasksim.taxonomy.trees import GROUP_COLOURS, GROUP_TITLES  # noqa: E402
from tasksim.taxonomy.uncertainty import format_p_value  # noqa: E402

__all__ = ["new_figure", "heading", "save", "similarity_heatmap", "precision_recall_curves", "score_bars",
           "pair_scatter", "target_scatter", "group_colour"]



def new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout Figure with an Agg canvas."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def heading(fig: Figure, title: str, subtitle: str = "", fontsize: float = 10) -> str:
    """``title`` and ``subtitle`` wrapped to the figure's width (constrained layout does not wrap)."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))  # characters per line
    parts = [textwrap.fill(t, width) for t in (title, subtitle) if t]
    return "\n".join(parts)


def message_figure(title: str, message: str, figsize: tuple[float, float] = (7, 3)) -> Figure:
    """A figure that says why there is nothing to plot (the file a rule promised still exists)."""
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=8)
    fig.suptitle(title)
    return fig


def save(fig: Figure, *paths: str | Path, dpi: int = 150) -> None:
    """Save ``fig`` to each path (format from the suffix, e.g. ``.png`` and ``.pdf``), atomically."""
    for p in paths:
        p = Path(p)
        with atomic_path(p, suffix=p.suffix) as tmp:
            fig.savefig(tmp, dpi=dpi, format=p.suffix.lstrip("."))


def group_colour(name: str) -> str:
    """Colour of a model's task group (grey for user models)."""
    g = _tasks.group(name) or "other"
    return GROUP_COLOURS.get(g, GROUP_COLOURS["other"])


def _group_legend(fig: Figure, names: Sequence[str], title: str = "task group (label colour)") -> None:
    used = []
    for n in names:
        g = _tasks.group(n) or "other"
        if g not in used:
            used.append(g)
    order = [g for g in GROUP_COLOURS if g in used]
    fig.legend(handles=[Patch(color=GROUP_COLOURS[g], label=GROUP_TITLES[g]) for g in order],
               title=title, loc="outside lower center", ncols=len(order),
               frameon=False)


def similarity_heatmap(sim: pd.DataFrame, order: Sequence[str] | None = None,
                       title: str = "Task similarity", colorbar_label: str = "similarity",
                       subtitle: str = "") -> Figure:
    """Heatmap of a model x model similarity matrix, rows and columns in ``order`` (tree leaves).

    Tick labels are display names coloured by task group; a colour bar gives the scale.
    """
    order = list(order) if order is not None else list(sim.index)
    m = sim.loc[order, order].to_numpy(dtype=float)
    n = len(order)
    size = max(5.0, 0.33 * n + 2.5)
    fig = new_figure((size + 1.0, size + 0.6))
    ax = fig.add_subplot()
    off = m[~np.eye(n, dtype=bool)] if n > 1 else m.ravel()
    vmin, vmax = (float(np.nanmin(off)), float(np.nanmax(off))) if off.size else (0.0, 1.0)
    im = ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9,
                   interpolation="nearest")
    names = [_tasks.display_name(x) for x in order]
    ax.set_xticks(range(n), names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    for lab, name in zip(ax.get_xticklabels(), order):
        lab.set_color(group_colour(name))
    for lab, name in zip(ax.get_yticklabels(), order):
        lab.set_color(group_colour(name))
    ax.set_xlabel("model (ordered by the task tree)")
    ax.set_ylabel("model (ordered by the task tree)")
    fig.suptitle(heading(fig, title, subtitle, 10), fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar_label + " (colour scale: off-diagonal range)")
    _group_legend(fig, order)
    return fig


def precision_recall_curves(curves: Mapping[str, Mapping[str, Sequence[float]]],
                            oracle_precision: Sequence[float], n_relevant: int = 5,
                            n_candidates: int = 19, title: str = "P@K and R@K",
                            subtitle: str = "") -> Figure:
    """The attribution paper's figure: P@K (left) and R@K (right) of every analysis, with the
    random baseline (P@K = n_relevant / n_candidates, R@K = K / n_candidates) and the oracle.

    ``curves``: ``{label: {"k": [...], "precision": [...], "recall": [...]}}`` with optional
    ``precision_low`` / ``precision_high`` / ``recall_low`` / ``recall_high`` drawn as bands.
    """
    fig = new_figure((12.0, 5.2))
    axes = fig.subplots(1, 2, sharex=True)
    k = np.arange(1, len(oracle_precision) + 1)
    oracle_p = np.asarray(oracle_precision, dtype=float)
    oracle_r = oracle_p * k / n_relevant
    rand_p = np.full(k.shape, n_relevant / n_candidates)
    rand_r = k / n_candidates
    cmap = matplotlib.colormaps["tab10" if len(curves) <= 10 else "tab20"]
    for ax, what, oracle, rand in ((axes[0], "precision", oracle_p, rand_p),
                                   (axes[1], "recall", oracle_r, rand_r)):
        ax.plot(k, oracle, color="black", lw=2, ls="-", label="oracle (Taskonomy ranking)")
        ax.plot(k, rand, color="grey", lw=2, ls="--",
                label=f"random ({n_relevant}/{n_candidates})" if what == "precision"
                else f"random (K/{n_candidates})")
        for i, (label, c) in enumerate(curves.items()):
            kk = np.asarray(c["k"])
            y = np.asarray(c[what], dtype=float)
            col = cmap(i % cmap.N)
            ax.plot(kk, y, marker="o", ms=3, lw=1.3, color=col, label=label)
            lo, hi = c.get(f"{what}_low"), c.get(f"{what}_high")
            if lo is not None and hi is not None and None not in lo and None not in hi:
                ax.fill_between(kk, np.asarray(lo, float), np.asarray(hi, float), color=col,
                                alpha=0.12, lw=0)
        ax.set_xlabel("K (number of most similar tasks retrieved)")
        ax.set_ylabel("P@K (mean over targets)" if what == "precision" else "R@K (mean over targets)")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(k[::2] if len(k) > 10 else k)
        ax.grid(alpha=0.3)
        ax.set_title("precision at K" if what == "precision" else "recall at K")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.25, label="95 % bootstrap band"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(heading(fig, title, subtitle, 11), fontsize=11)
    return fig


def score_bars(table: pd.DataFrame, scores: Sequence[str], score_titles: Mapping[str, str] | None = None,
               title: str = "Agreement with Taskonomy", ylabel: str = "mean per-target Spearman",
               subtitle: str = "") -> Figure:
    """Grouped bars: one group per analysis (``method/layer``), one bar per score, with the
    bootstrap interval as error bars and the permutation p-value above each bar.

    ``table``: rows with columns ``method``, ``layer``, ``score``, ``estimate``, ``ci_low``,
    ``ci_high``, ``p_value`` (the summary table).
    """
    score_titles = dict(score_titles or {})
    t = table[table["score"].isin(scores) & table["estimate"].notna()]
    analyses = list(dict.fromkeys(f"{m}/{lay}" for m, lay in zip(t["method"], t["layer"])))
    fig = new_figure((max(6.0, 0.9 * len(analyses) * max(1, len(scores)) / 1.5 + 3), 6.0))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(scores))
    colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"]
    for j, sc in enumerate(scores):
        sub = t[t["score"] == sc]
        xs, ys, lo, hi, ps, ns, chances = [], [], [], [], [], [], []
        for i, a in enumerate(analyses):
            m, lay = a.split("/", 1)
            r = sub[(sub["method"] == m) & (sub["layer"] == lay)]
            if r.empty:
                continue
            r = r.iloc[0]
            xs.append(i + (j - (len(scores) - 1) / 2) * width)
            ys.append(float(r["estimate"]))
            has_ci = pd.notna(r["ci_low"]) and pd.notna(r["ci_high"])
            # a percentile interval need not contain the estimate: clip the bars at 0 length
            lo.append(max(0.0, float(r["estimate"]) - float(r["ci_low"])) if has_ci else 0.0)
            hi.append(max(0.0, float(r["ci_high"]) - float(r["estimate"])) if has_ci else 0.0)
            ps.append(r["p_value"])
            chances.append(float(r["chance"]) if "chance" in r and pd.notna(r["chance"]) else None)
            ns.append(r["n_permutations"] if "n_permutations" in r and pd.notna(r["n_permutations"]) else 0)
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=colours[j % len(colours)],
               label=score_titles.get(sc, sc), ecolor="black")
        if chances and any(c is not None and np.isfinite(c) for c in chances):
            ax.scatter(xs, [np.nan if c is None else c for c in chances], marker="_", s=400,
                       color="black", linewidths=2, zorder=3,
                       label="chance (task labels permuted)" if j == 0 else None)
        for x, y, h, p, n in zip(xs, ys, hi, ps, ns):
            if p is not None and pd.notna(p):
                ax.text(x, max(y, 0) + h + 0.02, format_p_value(float(p), int(n)), ha="center",
                        va="bottom", fontsize=6, rotation=90)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(analyses)), analyses, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("analysis (method / layer)")
    ax.set_ylabel(ylabel)
    ymin = min(0.0, float(t["ci_low"].min()) if t["ci_low"].notna().any() else 0.0)
    ax.set_ylim(ymin - 0.05, 1.2)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(title="error bars: 95 % bootstrap CI over images; p: permutation test",
               fontsize=8, title_fontsize=8, loc="outside lower center", frameon=False)
    ax.set_title(heading(fig, title, subtitle, 10), fontsize=10)
    return fig


def pair_scatter(x: pd.DataFrame, ys: Mapping[str, pd.DataFrame], xlabel: str,
                 title: str = "Similarity per task pair", subtitle: str = "") -> Figure:
    """One panel per entry of ``ys``: the similarity of each task pair under ``x`` (e.g. SVCCA)
    against the same pair under ``ys[label]`` (e.g. an attribution method), with Spearman rho."""
    from scipy.stats import spearmanr

    n = max(1, len(ys))
    fig = new_figure((4.3 * n, 4.6))
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, (label, y) in zip(axes, ys.items()):
        common = [m for m in x.index if m in y.index]
        iu = np.triu_indices(len(common), 1)
        xv = x.loc[common, common].to_numpy(float)[iu]
        yv = y.loc[common, common].to_numpy(float)[iu]
        same = np.array([(_tasks.group(common[i]) or "a") == (_tasks.group(common[j]) or "b")
                         for i, j in zip(*iu)], dtype=bool)
        ax.scatter(xv[~same], yv[~same], s=12, color="#999999", alpha=0.7,
                   label="pair from different groups")
        ax.scatter(xv[same], yv[same], s=14, color="#D55E00", alpha=0.85,
                   label="pair within one task group")
        rho = spearmanr(xv, yv).statistic if len(xv) > 2 else float("nan")
        ax.set_title(f"{label}\nSpearman rho = {rho:.3f} ({len(xv)} pairs)", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{label} similarity")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(heading(fig, title, subtitle, 11), fontsize=11)
    return fig


def target_scatter(sim: pd.DataFrame, groundtruth: pd.DataFrame, targets: Sequence[str],
                   sources: Sequence[str], title: str = "Method similarity vs Taskonomy affinity",
                   gt_label: str = "Taskonomy affinity", subtitle: str = "") -> Figure:
    """Small multiples, one per target: each source's similarity to the target (x) against its
    ground-truth transfer to the target (y, log scale for positive affinities), Spearman rho."""
    from scipy.stats import spearmanr

    targets = [t for t in targets if t in sim.columns and t in groundtruth.columns]
    ncol = min(5, max(1, len(targets)))
    nrow = int(np.ceil(len(targets) / ncol)) if targets else 1
    fig = new_figure((3.0 * ncol, 2.7 * nrow + 1.2))
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, t in zip(axes, targets):
        src = [s for s in sources if s != t and s in sim.index and s in groundtruth.index]
        xv = sim.loc[src, t].to_numpy(float)
        yv = groundtruth.loc[src, t].to_numpy(float)
        ax.scatter(xv, yv, s=14, c=[group_colour(s) for s in src])
        if np.all(yv > 0):
            ax.set_yscale("log")
        rho = spearmanr(xv, yv).statistic if len(src) > 2 else float("nan")
        ax.set_title(f"target: {_tasks.display_name(t)}\nrho = {rho:.2f}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("similarity of source to target", fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(targets):]:
        ax.set_visible(False)
    fig.supylabel(f"{gt_label} (source -> target)")
    fig.suptitle(heading(fig, title, subtitle, 11), fontsize=11)
    names = list(dict.fromkeys(sources))
    _group_legend(fig, names, "source task group (point colour)")
    return fig
