"""Task trees: hierarchical clustering of a task x task similarity matrix, and its serialisations.

Default = the RSA paper (MATLAB ``linkage`` default): **single** linkage on **Euclidean distances
between the rows** of the similarity matrix, then optimal leaf ordering
(:func:`scipy.cluster.hierarchy.optimal_leaf_ordering`). Options: linkage ``average``,
``complete``, ``ward``; distance ``one_minus_similarity`` (1 - S, symmetrised, zero diagonal).

A tree is carried around as a scipy linkage matrix ``Z`` plus leaf labels, or as a
:class:`networkx.DiGraph` (edges parent -> child with attribute ``length``; node attribute
``height``; leaves also have ``task`` = ``label`` = their name; graph attribute ``root``), which
serialises to JSON (:func:`tree_to_json`) and Newick (:func:`to_newick`, with branch lengths;
:func:`parse_newick` reads it back).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from scipy.cluster.hierarchy import cophenet, dendrogram, linkage, optimal_leaf_ordering  # noqa: E402
from scipy.spatial.distance import pdist, squareform  # noqa: E402

from tasksim import tasks as _tasks  # noqa: E402

__all__ = [
    "LINKAGES", "DISTANCES", "GROUP_COLOURS", "similarity_distances", "cluster", "cut",
    "cophenetic_matrix", "linkage_to_digraph", "to_newick", "parse_newick", "digraph_to_newick",
    "tree_to_json", "tree_from_json", "leaves", "clades", "tree_cophenetic", "dendrogram_figure",
]

LINKAGES: tuple[str, ...] = ("single", "average", "complete", "ward")
DISTANCES: tuple[str, ...] = ("rows_euclidean", "one_minus_similarity")

#: Colour of each task group in figures (colour-blind-safe Okabe-Ito hues).
GROUP_COLOURS: dict[str, str] = {
    "2D": "#0072B2", "3D": "#D55E00", "low_dim_geometric": "#009E73", "semantic": "#CC79A7",
    "other": "#555555",
}
#: How figure legends name each group.
GROUP_TITLES: dict[str, str] = {"2D": "2D", "3D": "3D", "low_dim_geometric": "low-dim. geometric",
                                "semantic": "semantic", "other": "other / user model"}


def similarity_distances(similarity: np.ndarray, distance: str = "rows_euclidean") -> np.ndarray:
    """Condensed distance vector between the tasks of a square similarity matrix.

    ``rows_euclidean``: Euclidean distance between rows of S (the RSA paper / MATLAB default).
    ``one_minus_similarity``: 1 - (S + S.T) / 2 off the diagonal (negative values clipped to 0).
    """
    s = np.asarray(similarity, dtype=float)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be a square matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("similarity matrix has non-finite entries")
    if distance == "rows_euclidean":
        return pdist(s, metric="euclidean")
    if distance == "one_minus_similarity":
        d = 1.0 - (s + s.T) / 2.0
        np.fill_diagonal(d, 0.0)
        return squareform(np.clip(d, 0.0, None), checks=False)
    raise ValueError(f"unknown distance {distance!r}; valid: {', '.join(DISTANCES)}")


def cluster(similarity: np.ndarray, method: str = "single", distance: str = "rows_euclidean",
            optimal_ordering: bool = True) -> np.ndarray:
    """Linkage matrix ``Z`` ((n-1) x 4, scipy format) of a task x task similarity matrix.

    Defaults reproduce the RSA paper: single linkage, Euclidean distances between rows, optimal
    leaf ordering (which reorders children only; merge heights are unchanged).
    """
    if method not in LINKAGES:
        raise ValueError(f"unknown linkage {method!r}; valid: {', '.join(LINKAGES)}")
    d = similarity_distances(similarity, distance)
    z = linkage(d, method=method)
    return optimal_leaf_ordering(z, d) if optimal_ordering and len(d) > 1 else z


def cut(z: np.ndarray, n_clusters: int) -> np.ndarray:
    """Flat clusters (int labels 0..n_clusters-1, by first appearance) after the first n-k merges.

    Exactly ``n_clusters`` clusters, also with tied heights (unlike ``fcluster(maxclust)``).
    """
    z = np.asarray(z)
    n = z.shape[0] + 1
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be in 1..{n}, got {n_clusters}")
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for i in range(n - n_clusters):
        a, b = int(z[i, 0]), int(z[i, 1])
        members[n + i] = members.pop(a) + members.pop(b)
    out = np.empty(n, dtype=int)
    for k, leaf_list in enumerate(sorted(members.values(), key=min)):
        out[leaf_list] = k
    return out


def cophenetic_matrix(z: np.ndarray) -> np.ndarray:
    """Square matrix of cophenetic distances (merge height of the two leaves' lowest common node)."""
    return squareform(cophenet(np.asarray(z, dtype=float)))


def linkage_to_digraph(z: np.ndarray, labels: Sequence[str]) -> nx.DiGraph:
    """Tree as a DiGraph: node ids as scipy (0..n-1 leaves, n+i = merge i), root = 2n-2.

    Leaves: ``height`` 0, ``task`` and ``label`` = name. Internal nodes: ``height`` = merge
    height, ``label`` None. Edge parent -> child: ``length`` = height difference. Children keep
    the linkage order (left then right).
    """
    z = np.asarray(z, dtype=float)
    n = z.shape[0] + 1
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for a linkage of {n} leaves")
    g = nx.DiGraph()
    for i, name in enumerate(labels):
        g.add_node(i, height=0.0, task=str(name), label=str(name))
    for i, row in enumerate(z):
        node = n + i
        g.add_node(node, height=float(row[2]), label=None)
        for child in (int(row[0]), int(row[1])):
            g.add_edge(node, child, length=float(row[2]) - g.nodes[child]["height"])
    g.graph["root"] = 2 * n - 2 if n > 1 else 0
    return g


_SPECIAL = set("()[]':;, \t\n")


def _quote(name: str) -> str:
    if name and not (_SPECIAL & set(name)):
        return name
    return "'" + name.replace("'", "''") + "'"


def digraph_to_newick(g: nx.DiGraph) -> str:
    """Newick string of a tree DiGraph, branch lengths from edge ``length``, children in order."""

    def rec(node) -> str:
        kids = list(g.successors(node))
        label = g.nodes[node].get("label")
        text = "(" + ",".join(rec(k) + ":" + format(g.edges[node, k]["length"], ".17g")
                              for k in kids) + ")" if kids else ""
        return text + (_quote(str(label)) if label is not None else "")

    return rec(g.graph["root"]) + ";"


def to_newick(z: np.ndarray, labels: Sequence[str]) -> str:
    """Newick string (with branch lengths) of a linkage matrix and its leaf labels."""
    return digraph_to_newick(linkage_to_digraph(z, labels))


def _tokens(text: str):
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "[":  # comment
            j = text.find("]", i)
            if j < 0:
                raise ValueError("unterminated [comment] in Newick")
            i = j + 1
        elif c in "(),:;":
            yield c
            i += 1
        elif c == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise ValueError("unterminated quoted label in Newick")
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            yield ("label", "".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in _SPECIAL:
                j += 1
            yield ("label", text[i:j])  # underscores kept literally
            i = j


def parse_newick(text: str) -> nx.DiGraph:
    """Parse a Newick string into a tree DiGraph (same attributes as :func:`linkage_to_digraph`).

    Node ids are integers in order of appearance (root = 0); a missing branch length counts as 0.
    ``height`` = (max root-to-leaf path length) - (root-to-node path length), so an ultrametric
    tree gets its merge heights back and leaves height 0.
    """
    toks = list(_tokens(text))
    if not toks or toks[-1] != ";":
        raise ValueError("Newick string must end with ';'")
    g = nx.DiGraph()
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def node() -> int:
        nonlocal pos
        me = g.number_of_nodes()
        g.add_node(me, label=None)
        kids: list[tuple[int, float]] = []
        if peek() == "(":
            pos += 1
            while True:
                kid = node()
                length = 0.0
                if peek() == ":":
                    pos += 1
                    tok = peek()
                    if not isinstance(tok, tuple):
                        raise ValueError(f"expected a branch length after ':', got {tok!r}")
                    length = float(tok[1])
                    pos += 1
                kids.append((kid, length))
                if peek() == ",":
                    pos += 1
                    continue
                if peek() == ")":
                    pos += 1
                    break
                raise ValueError(f"unexpected token {peek()!r} in Newick")
        tok = peek()
        if isinstance(tok, tuple):
            g.nodes[me]["label"] = tok[1]
            pos += 1
        for kid, length in kids:
            g.add_edge(me, kid, length=length)
        if not kids:
            if g.nodes[me]["label"] is None:
                raise ValueError("Newick leaf without a label")
            g.nodes[me]["task"] = g.nodes[me]["label"]
        return me

    root = node()
    if peek() != ";" or pos != len(toks) - 1:
        raise ValueError(f"trailing tokens in Newick after the root: {toks[pos:]!r}")
    g.graph["root"] = root
    depth = {root: 0.0}
    for parent, child in nx.dfs_edges(g, root):
        depth[child] = depth[parent] + g.edges[parent, child]["length"]
    top = max(depth.values())
    for v, d in depth.items():
        g.nodes[v]["height"] = top - d
    return g


def tree_to_json(g: nx.DiGraph) -> str:
    """JSON text of a tree DiGraph (networkx node-link format, edges under ``links``)."""
    return json.dumps(nx.node_link_data(g, edges="links"))


def tree_from_json(text: str) -> nx.DiGraph:
    """Inverse of :func:`tree_to_json`."""
    return nx.node_link_graph(json.loads(text), directed=True, edges="links")


def leaves(g: nx.DiGraph, node=None) -> list[str]:
    """Leaf labels below ``node`` (default: the root), left to right."""
    node = g.graph["root"] if node is None else node
    return [g.nodes[v]["label"] for v in nx.dfs_preorder_nodes(g, node) if g.out_degree(v) == 0]


def clades(g: nx.DiGraph) -> set[frozenset[str]]:
    """Set of clades: for every node, the frozenset of leaf labels below it."""
    return {frozenset(leaves(g, v)) for v in g.nodes}


def tree_cophenetic(g: nx.DiGraph, labels: Sequence[str] | None = None) -> np.ndarray:
    """Cophenetic distance matrix of a tree DiGraph: ``height`` of each leaf pair's lowest common ancestor.

    Rows/columns follow ``labels`` (default: leaf order); for a tree from
    :func:`linkage_to_digraph` it equals :func:`cophenetic_matrix`.
    """
    labels = list(leaves(g)) if labels is None else list(labels)
    root = g.graph["root"]
    leaf_node = {g.nodes[v]["label"]: v for v in g.nodes if g.out_degree(v) == 0}
    anc: dict[str, list] = {}
    for name in labels:
        path = nx.shortest_path(g, root, leaf_node[name])
        anc[name] = path
    n = len(labels)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            a, b = anc[labels[i]], anc[labels[j]]
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            out[i, j] = out[j, i] = g.nodes[a[k - 1]]["height"]
    return out


def dendrogram_figure(z: np.ndarray, labels: Sequence[str],
                      groups: Mapping[str, str | None] | Callable[[str], str | None] | None = None,
                      title: str = "Task tree", xlabel: str = "merge height (linkage distance)",
                      display_names: bool = True, figsize: tuple[float, float] | None = None) -> Figure:
    """Dendrogram with leaf labels coloured by task group and a legend of group colours.

    ``groups`` maps a label to its group (2D, 3D, semantic, low_dim_geometric); default
    :func:`tasksim.tasks.group`. Labels without a group are grey ("other"). Leaves are drawn on
    the right with horizontal labels (display names by default), the root on the left; the x axis
    is the merge height. Uses a non-interactive Agg canvas; save with ``fig.savefig(path)``.
    """
    labels = [str(x) for x in labels]
    if groups is None:
        group_of: Callable[[str], str | None] = _tasks.group
    elif callable(groups):
        group_of = groups
    else:
        group_of = groups.get  # type: ignore[assignment]
    names = [_tasks.display_name(x) if display_names else x for x in labels]
    fig = Figure(figsize=figsize or (7.0, 0.32 * len(labels) + 1.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    dendrogram(np.asarray(z, dtype=float), labels=names, orientation="left", ax=ax,
                      color_threshold=0, above_threshold_color="#333333")
    by_name = dict(zip(names, labels))
    used: list[str] = []
    for tick in ax.get_yticklabels():
        g = group_of(by_name[tick.get_text()]) or "other"
        g = g if g in GROUP_COLOURS else "other"
        tick.set_color(GROUP_COLOURS[g])
        if g not in used:
            used.append(g)
    from tasksim.taxonomy.figures import heading  # figures imports this module

    ax.set_title(heading(fig, title, fontsize=10), fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("task (leaf colour = task group)")
    order = [g for g in GROUP_COLOURS if g in used]
    fig.legend(handles=[Patch(color=GROUP_COLOURS[g], label=GROUP_TITLES[g]) for g in order],
               title="task group", loc="outside lower center", ncols=len(order), frameon=False)
    ax.spines[["top", "right", "left"]].set_visible(False)
    return fig
