"""Trees: clustering recovers blocks, Newick / JSON round trips, cophenetic distances, figure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import cophenet

from tasksim.taxonomy import trees

BLOCKS = [["a", "b", "c"], ["d", "e", "f", "g"], ["h", "i", "j"]]
LABELS = [x for b in BLOCKS for x in b]


def _block_similarity(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(LABELS)
    s = 0.1 + 0.05 * rng.standard_normal((n, n))
    start = 0
    for b in BLOCKS:
        s[start:start + len(b), start:start + len(b)] = 0.8 + 0.05 * rng.standard_normal((len(b),) * 2)
        start += len(b)
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    perm = rng.permutation(n)  # shuffle so the blocks are not contiguous in the input
    return s[np.ix_(perm, perm)], [LABELS[i] for i in perm]


@pytest.mark.parametrize("method", trees.LINKAGES)
@pytest.mark.parametrize("distance", trees.DISTANCES)
def test_blocks_are_clades(method, distance):
    s, labels = _block_similarity()
    z = trees.cluster(s, method=method, distance=distance)
    g = trees.linkage_to_digraph(z, labels)
    cl = trees.clades(g)
    for b in BLOCKS:
        assert frozenset(b) in cl
    part = trees.cut(z, 3)
    for b in BLOCKS:
        assert len({part[labels.index(x)] for x in b}) == 1
    assert len(set(part)) == 3


def test_default_is_single_linkage_on_row_euclidean_with_optimal_order():
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist
    s, _ = _block_similarity(1)
    z = trees.cluster(s)
    ref = linkage(pdist(s), method="single")
    assert np.allclose(np.sort(z[:, 2]), np.sort(ref[:, 2]))
    d = trees.similarity_distances(s, "one_minus_similarity")
    assert d.min() >= 0 and np.allclose(trees.similarity_distances(s), pdist(s))


def test_newick_round_trip_topology_and_heights():
    s, labels = _block_similarity(2)
    labels = [x if i else "odd name, (x)'s" for i, x in enumerate(labels)]  # needs quoting
    z = trees.cluster(s, method="average")
    text = trees.to_newick(z, labels)
    assert text.endswith(";") and "'odd name, (x)''s'" in text
    assert text.replace("'odd name, (x)''s'", "X").count("(") == len(labels) - 1
    g = trees.parse_newick(text)
    assert trees.clades(g) == trees.clades(trees.linkage_to_digraph(z, labels))
    assert trees.leaves(g) == trees.leaves(trees.linkage_to_digraph(z, labels))
    root_h = g.nodes[g.graph["root"]]["height"]
    assert root_h == pytest.approx(z[-1, 2])
    internal = sorted(d["height"] for _, d in g.nodes(data=True) if d.get("task") is None)
    assert np.allclose(internal, np.sort(z[:, 2]))
    assert np.allclose(trees.tree_cophenetic(g, labels), trees.cophenetic_matrix(z))
    assert trees.digraph_to_newick(g) == text  # idempotent


def test_parse_newick_hand_written():
    g = trees.parse_newick("((A:1,B:1)x:2,[comment](C:0.5,'D E':0.5):2.5);")
    assert trees.leaves(g) == ["A", "B", "C", "D E"]
    assert trees.tree_cophenetic(g, ["A", "B", "C"]).tolist() == [[0, 1, 3], [1, 0, 3], [3, 3, 0]]
    with pytest.raises(ValueError):
        trees.parse_newick("((A:1,B:1)")


def test_json_round_trip():
    s, labels = _block_similarity(3)
    z = trees.cluster(s, method="complete")
    g = trees.linkage_to_digraph(z, labels)
    h = trees.tree_from_json(trees.tree_to_json(g))
    assert h.graph["root"] == g.graph["root"]
    assert sorted(h.edges) == sorted(g.edges)
    assert all(h.nodes[v] == g.nodes[v] for v in g.nodes)
    assert trees.digraph_to_newick(h) == trees.to_newick(z, labels)


def test_cophenetic_matrix_matches_scipy_and_is_ultrametric():
    s, _ = _block_similarity(4)
    z = trees.cluster(s, method="ward")
    c = trees.cophenetic_matrix(z)
    assert np.allclose(c[np.triu_indices(len(c), 1)], cophenet(z))
    n = len(c)
    for i in range(n):  # ultrametric inequality
        for j in range(n):
            assert np.all(c[i, j] <= np.maximum(c[i, :], c[:, j]) + 1e-12)


def test_cut_gives_exact_cluster_counts():
    s, _ = _block_similarity(5)
    z = trees.cluster(s)
    for k in range(1, len(s) + 1):
        assert len(set(trees.cut(z, k))) == k


def test_dendrogram_figure_is_labelled_and_coloured(tmp_path):
    from matplotlib.figure import Figure

    from tasksim.tasks import PAPER_TASKS
    names = list(PAPER_TASKS[:8])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5))
    z = trees.cluster(np.corrcoef(x))
    fig = trees.dendrogram_figure(z, names, title="RSA tree")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "RSA tree" and ax.get_xlabel()
    colours = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert colours["Curvature"] == trees.GROUP_COLOURS["3D"]
    assert colours["Autoencoding"] == trees.GROUP_COLOURS["2D"]
    legend_texts = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    assert {"2D", "3D"} <= legend_texts
    fig.savefig(tmp_path / "tree.png")
    assert (tmp_path / "tree.png").stat().st_size > 1000
