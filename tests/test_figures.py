"""Plot functions: Figures with titles, axis labels and legends; saved as PNG and PDF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tasksim import tasks
from tasksim.taxonomy import figures, trees

T = list(tasks.PAPER_TASKS)


def _sim(names, seed=0):
    rng = np.random.default_rng(seed)
    g = [tasks.group(n) or n for n in names]
    s = np.array([[0.8 if a == b else 0.2 for b in g] for a in g]) + rng.normal(0, 0.05, (len(g),) * 2)
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    return pd.DataFrame(s, index=names, columns=names)


def _check(fig: Figure, tmp_path, name: str, n_legend_min: int = 1) -> None:
    assert isinstance(fig, Figure)
    title = fig._suptitle.get_text() if fig._suptitle else ""
    axes = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert title or any(a.get_title() for a in axes)
    labelled = [a for a in axes if a.get_xlabel() or a.get_ylabel()]
    assert labelled or (fig._supxlabel is not None and fig._supxlabel.get_text())
    legends = list(fig.legends) + [a.get_legend() for a in axes if a.get_legend()]
    assert len(legends) >= n_legend_min
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    figures.save(fig, png, pdf)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_heatmap_ordered_by_tree(tmp_path):
    sim = _sim(T + ["my_model"])
    z = trees.cluster(sim.to_numpy())
    order = trees.leaves(trees.linkage_to_digraph(z, list(sim.index)))
    fig = figures.similarity_heatmap(sim, order, title="Similarity: rsa / block1", subtitle="24 images")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [tasks.display_name(x) for x in order]
    assert ax.get_xlabel() and "rsa" in fig.get_suptitle()
    _check(fig, tmp_path, "heatmap")
    _title_inside(fig)


def _title_inside(fig):
    """Every title lies wholly inside the figure (none is cut at an edge)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [fig._suptitle] if fig._suptitle is not None else []
    texts += [ax.title for ax in fig.axes if ax.get_title()]
    assert texts
    for t in texts:
        b = t.get_window_extent(renderer)
        assert b.x0 >= box.x0 - 1 and b.x1 <= box.x1 + 1 and b.y1 <= box.y1 + 1, (t.get_text(), b, box)


def test_long_titles_are_wrapped_inside_the_figure():
    table = pd.DataFrame({"method": ["rsa"], "layer": ["encoder_output"], "score": ["dds_affinity"],
                          "estimate": [0.7], "ci_low": [0.6], "ci_high": [0.8], "p_value": [1 / 1001],
                          "chance": [0.1], "n_permutations": [1000]})
    long = "DDS protocol: mean per-target Spearman with the measured Mini-Taskonomy affinity of every task"
    fig = figures.score_bars(table, ["dds_affinity"], title=long, subtitle="config demo.yaml - 200 images")
    _title_inside(fig)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["p < 0.001"]


def test_precision_recall_curves(tmp_path):
    k = list(range(1, 20))
    oracle = [1.0] * 5 + [5 / x for x in range(6, 20)]
    curves = {"rsa / block4": {"k": k, "precision": [0.5] * 19, "recall": [x / 19 for x in k],
                               "precision_low": [0.4] * 19, "precision_high": [0.6] * 19,
                               "recall_low": [0.0] * 19, "recall_high": [1.0] * 19},
              "attribution_saliency / input": {"k": k, "precision": [0.3] * 19,
                                               "recall": [0.3] * 19}}
    fig = figures.precision_recall_curves(curves, oracle, title="P@K", subtitle="demo")
    left, right = fig.axes[:2]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "oracle (Taskonomy ranking)" in labels and "random (5/19)" in labels
    assert "rsa / block4" in labels
    assert "P@K" in left.get_ylabel() and "R@K" in right.get_ylabel()
    # random baseline drawn at 5/19
    rand = [ln for ln in left.get_lines() if ln.get_label().startswith("random")][0]
    assert np.allclose(rand.get_ydata(), 5 / 19)
    _check(fig, tmp_path, "pk")


def test_score_bars_with_intervals(tmp_path):
    table = pd.DataFrame({
        "method": ["rsa", "rsa", "svcca", "svcca"], "layer": ["block4"] * 2 + ["encoder_output"] * 2,
        "score": ["dds_affinity", "dds_wins_vs_pixels"] * 2, "estimate": [0.7, 0.6, 0.5, 0.4],
        "ci_low": [0.6, 0.65, 0.4, None], "ci_high": [0.8, 0.7, 0.6, None],
        "p_value": [0.001, 0.01, 0.2, None]})
    fig = figures.score_bars(table, ["dds_affinity", "dds_wins_vs_pixels"],
                             {"dds_affinity": "vs all_affinities"}, title="DDS")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["rsa/block4", "svcca/encoder_output"]
    assert len(ax.patches) == 4
    _check(fig, tmp_path, "bars")


def test_pair_and_target_scatter(tmp_path):
    a, b = _sim(T, 1), _sim(T, 2)
    fig = figures.pair_scatter(a, {"attribution_saliency": b, "attribution_elrp": a},
                               xlabel="SVCCA similarity", title="SVCCA vs attribution")
    assert len(fig.axes) == 2 and "Spearman" in fig.axes[0].get_title()
    assert fig.axes[0].get_xlabel() == "SVCCA similarity"
    _check(fig, tmp_path, "pairs")
    gt = pd.DataFrame(np.random.default_rng(0).uniform(0.01, 1, (20, 20)), index=T, columns=T)
    targets = T[:6]
    fig = figures.target_scatter(a, gt, targets, T, title="rsa vs Taskonomy")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(targets)
    assert all(ax.get_title().startswith("target: ") for ax in visible)
    _check(fig, tmp_path, "targets")


@pytest.mark.parametrize("n", [3, 25])
def test_heatmap_sizes(tmp_path, n):
    names = [f"m{i}" for i in range(n)]
    fig = figures.similarity_heatmap(_sim(names), title="user models")
    _check(fig, tmp_path, f"hm{n}")
