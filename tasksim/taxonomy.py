"""Glue of the taxonomy stage: read similarity files, build trees, score every analysis with
bootstrap intervals and permutation p-values, and tabulate (docs/data-layout.md, docs/methods.md).

The science lives in :mod:`tasksim.trees`, :mod:`tasksim.scoring`, :mod:`tasksim.uncertainty` and
:mod:`tasksim.groundtruth`; this module only decides *which* protocol is defined for a given set of
models and ground truth, runs one scoring function over the full sample, the bootstrap resamples
and the label permutations, and writes the results in the JSON / table form of the data layout.

Protocols (keys of ``scores`` in the JSON):

* ``attribution`` (Song et al.): ``p@K`` / ``r@K`` for K = 1..19, 18 targets, top-5 of
  ``affinity_16k``; ``mean_p@k`` = mean of P@K over K.
* ``dds_affinity`` (unsuffixed affinities) and ``dds_wins_vs_pixels`` (``wins_vs_pixels_16k``):
  mean over the 17 targets of the per-target Spearman.
* ``tree_cophenetic`` / ``tree_adjusted_rand``: agreement with the reference tree.

A protocol whose tasks are not all among the models (task subsets, user models) is recorded as
``{"skipped": reason}`` instead of failing. With a Mini-Taskonomy ground truth (a measured source x
target CSV) the same protocols run on the tasks that ground truth defines.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasksim import groundtruth as _gt
from tasksim import scoring as _sc
from tasksim import tasks as _tasks
from tasksim import trees as _trees
from tasksim import uncertainty as _unc
from tasksim.io import open_h5, read_str

__all__ = [
    "HEADLINE_SCORES", "SCORE_LABELS", "GROUNDTRUTH_LABELS", "groundtruth_label", "score_description",
    "describe_score", "read_similarity", "read_groundtruth_csv", "tree_json",
    "linkage_from_json", "reference_tree", "Protocols", "define_protocols", "score_matrix",
    "score_analysis", "FastScorer", "headline_rst", "article", "bootstrap_source", "summary_table", "summary_markdown",
]

#: Scores listed in the summary table, in order.
HEADLINE_SCORES: tuple[str, ...] = (
    "p@1", "p@5", "r@5", "mean_p@k", "dds_affinity", "dds_wins_vs_pixels", "tree_cophenetic",
    "tree_adjusted_rand")

#: Ground truth of each protocol, by ``taxonomy.groundtruth`` kind, as figures and tables name it.
GROUNDTRUTH_LABELS: dict[str, dict[str, str]] = {
    "taskonomy": {"attribution": "Taskonomy all_affinities_16k", "dds_affinity": "Taskonomy all_affinities",
                  "dds_wins_vs_pixels": "Taskonomy wins_vs_pixels_16k"},
    "minitaskonomy": {"attribution": "measured Mini-Taskonomy affinity",
                      "dds_affinity": "measured Mini-Taskonomy affinity",
                      "dds_wins_vs_pixels": "measured Mini-Taskonomy win rate vs pixels"},
}


def groundtruth_label(kind: str, protocol: str) -> str:
    """What the ground truth of ``protocol`` is called in figures and tables, for a ground-truth kind."""
    return GROUNDTRUTH_LABELS.get(kind, {}).get(protocol, f"{kind} ground truth")


def article(label: str) -> str:
    """``label`` with an article where it reads as a description ("the measured ...")."""
    return f"the {label}" if label.startswith("measured") else label


def score_description(key: str, protocols: Mapping[str, Any]) -> str:
    """What a headline score measures, against which ground truth, on how many tasks.

    ``protocols``: the ``protocols`` entry of a scores JSON (:func:`score_analysis`). Falls back to
    :data:`SCORE_LABELS` where the protocol was skipped.
    """
    protocol, generic = SCORE_LABELS[key]
    if protocol == "attribution":
        a = protocols.get("attribution", {})
        if "sources" not in a:
            return generic
        if key == "mean_p@k":
            return f"mean of P@K over K = 1..{len(a['sources']) - 1} (vs {article(a['groundtruth'])})"
        return (f"{key.split('@')[0].upper()}@{key.split('@')[1]} vs the top-{a['n_relevant']} sources of "
                f"{article(a['groundtruth'])} ({len(a['targets'])} targets)")
    if protocol == "dds":
        d = protocols.get(key, {})
        if "tasks" not in d:
            return generic
        return f"mean per-target Spearman vs {article(d['groundtruth'])} ({len(d['tasks'])} tasks)"
    tree = protocols.get("tree", {})
    ref = tree.get("reference", "the reference tree")
    if key == "tree_cophenetic":
        return f"cophenetic correlation with {ref}"
    return f"adjusted Rand index of the {tree.get('n_clusters', 'k')}-cluster cuts vs {ref}"


#: Generic description of each headline score (protocol, what is measured); the tables and
#: figures use :func:`score_description`, which names the ground truth of the run.
SCORE_LABELS: dict[str, tuple[str, str]] = {
    "p@1": ("attribution", "P@1 vs the top sources of the ground truth"),
    "p@5": ("attribution", "P@5 vs the top sources of the ground truth"),
    "r@5": ("attribution", "R@5 vs the top sources of the ground truth"),
    "mean_p@k": ("attribution", "mean of P@K over K"),
    "dds_affinity": ("dds", "mean per-target Spearman vs the affinity"),
    "dds_wins_vs_pixels": ("dds", "mean per-target Spearman vs the win rate against pixels"),
    "tree_cophenetic": ("tree", "cophenetic correlation with the reference tree"),
    "tree_adjusted_rand": ("tree", "adjusted Rand index of the k-cluster cuts"),
}


# ------------------------------------------------------------------------------------------------
# files


@dataclass
class SimilarityFile:
    """Content of ``R/similarity/{method}/{layer}.h5``."""

    matrix: pd.DataFrame
    attrs: dict[str, Any]
    per_image: np.ndarray | None = None

    @property
    def n_images(self) -> int:
        n = self.attrs.get("n_images")
        if n is not None:
            return int(n)
        return int(self.per_image.shape[2]) if self.per_image is not None else 0


def read_similarity(path: str | Path, per_image: bool = False) -> SimilarityFile:
    """Read a similarity HDF5 file (docs/data-layout.md); ``per_image`` also loads ``/per_image``."""
    with open_h5(path) as f:
        models = read_str(f["models"])
        s = np.asarray(f["similarity"][...], dtype=float)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
        cos = np.asarray(f["per_image"][...]) if per_image and "per_image" in f else None
    if isinstance(attrs.get("options"), str):
        try:
            attrs["options"] = json.loads(attrs["options"])
        except json.JSONDecodeError:
            pass
    return SimilarityFile(pd.DataFrame(s, index=models, columns=models), attrs, cos)


def read_groundtruth_csv(path: str | Path) -> pd.DataFrame:
    """A source x target ground-truth CSV (index column = sources, header = targets)."""
    df = pd.read_csv(path, index_col=0)
    df.index = [str(x) for x in df.index]
    df.columns = [str(x) for x in df.columns]
    df.index.name, df.columns.name = "source", "target"
    return df.astype(float)


def tree_json(z: np.ndarray, labels: Sequence[str], **info: Any) -> str:
    """Node-link JSON of a tree (:func:`tasksim.trees.tree_to_json`) with the linkage matrix,
    leaf labels and ``info`` (linkage method, distance, ...) as graph attributes."""
    g = _trees.linkage_to_digraph(z, labels)
    g.graph.update(linkage=np.asarray(z, dtype=float).tolist(), labels=list(labels), **info)
    return _trees.tree_to_json(g)


def linkage_from_json(text: str) -> tuple[np.ndarray, list[str]]:
    """Linkage matrix and leaf labels stored by :func:`tree_json`."""
    g = _trees.tree_from_json(text)
    return np.asarray(g.graph["linkage"], dtype=float), list(g.graph["labels"])


def reference_tree(affinity: pd.DataFrame, kind: str = "taskonomy",
                   method: str = "average") -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """The reference tree of a ground truth (see :func:`tasksim.groundtruth.taskonomy_tree`).

    ``kind="taskonomy"``: the 20 paper tasks, 18 targets of ``all_affinities_16k``. Otherwise
    (Mini-Taskonomy): leaves = the task rows of the matrix, targets = its task columns.
    """
    if kind == "taskonomy":
        tasks, targets = _gt.TREE_TASKS, _gt.TREE_TARGETS
    else:
        rows = [r for r in affinity.index if r not in _gt.NON_TASK_LABELS]
        targets = tuple(c for c in affinity.columns if c in rows)
        tasks = tuple(r for r in rows if affinity.loc[r, list(targets)].notna().all())
    z, labels = _gt.taskonomy_tree(affinity, tuple(tasks), tuple(targets), method=method)
    info = {"reference": kind, "linkage_method": method, "distance": "euclidean",
            "features": "transfer-out affinities, ranks per target / n_tasks",
            "targets": list(targets)}
    return z, labels, info


# ------------------------------------------------------------------------------------------------
# protocols


@dataclass
class Protocols:
    """Which protocols are defined for one set of models, with their task sets and ground truths."""

    attribution: dict[str, Any] | None = None
    dds: dict[str, dict[str, Any]] = field(default_factory=dict)
    tree: dict[str, Any] | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def define_protocols(models: Sequence[str], groundtruth: Mapping[str, pd.DataFrame | None],
                     kind: str = "taskonomy", reference: tuple[np.ndarray, list[str]] | None = None,
                     n_clusters: int = 4) -> Protocols:
    """Decide the protocols for ``models``.

    ``groundtruth``: ``{"attribution": df, "dds_affinity": df, "dds_wins_vs_pixels": df}`` (a value
    may be None = not available). ``kind="taskonomy"`` uses the paper task sets and skips a
    protocol unless all its tasks are models; otherwise the sets come from the ground truth.
    """
    models = list(models)
    have = set(models)
    p = Protocols()
    gt_pk = groundtruth.get("attribution")
    if gt_pk is None:
        p.skipped["attribution"] = "no ground truth for the attribution protocol"
    elif kind == "taskonomy":
        missing = [t for t in _sc.ATTRIBUTION_SOURCES if t not in have]
        if missing:
            p.skipped["attribution"] = (f"needs the 20 paper tasks as models; missing {missing}")
        else:
            p.attribution = {"gt": gt_pk, "targets": list(_sc.ATTRIBUTION_TARGETS),
                             "sources": list(_sc.ATTRIBUTION_SOURCES), "n_relevant": _sc.N_RELEVANT,
                             "groundtruth": groundtruth_label(kind, "attribution")}
    else:
        sources = [m for m in models if m in gt_pk.index]
        targets = [m for m in sources if m in gt_pk.columns]
        n_rel = min(_sc.N_RELEVANT, len(sources) - 2)
        if n_rel < 1 or not targets:
            p.skipped["attribution"] = (f"fewer than 3 ground-truth sources among the models "
                                        f"({sources})")
        else:
            p.attribution = {"gt": gt_pk, "targets": targets, "sources": sources,
                             "n_relevant": n_rel, "groundtruth": groundtruth_label(kind, "attribution")}
    for name in ("dds_affinity", "dds_wins_vs_pixels"):
        gt = groundtruth.get(name)
        if gt is None:
            p.skipped[name] = "ground truth not configured"
            continue
        if kind == "taskonomy":
            tasks = list(_sc.DDS_TASKS)
            missing = [t for t in tasks if t not in have]
            if missing:
                p.skipped[name] = f"needs the 17 DDS tasks as models; missing {missing}"
                continue
        else:
            tasks = [m for m in models if m in gt.index and m in gt.columns]
            if len(tasks) < 3:
                p.skipped[name] = f"fewer than 3 tasks in both the models and the ground truth ({tasks})"
                continue
        p.dds[name] = {"gt": gt, "tasks": tasks, "groundtruth": groundtruth_label(kind, name)}
    if reference is None:
        p.skipped["tree"] = "no reference tree"
    else:
        common = [x for x in reference[1] if x in have]
        if len(common) < max(3, n_clusters):
            p.skipped["tree"] = (f"fewer than max(3, n_clusters={n_clusters}) tasks shared with "
                                 f"the reference tree ({common})")
        else:
            p.tree = {"z": reference[0], "labels": reference[1], "common": common,
                      "reference": f"the tree of {groundtruth_label(kind, 'attribution')}"}
    return p


def score_matrix(sim: pd.DataFrame, protocols: Protocols, tree: Mapping[str, Any],
                 n_clusters: int = 4) -> dict[str, float]:
    """All scalar scores of one similarity matrix (flat dict; keys as in the module docstring).

    ``tree``: clustering options ``method``, ``distance``, ``optimal_ordering`` of the method's tree.
    """
    out: dict[str, float] = {}
    a = protocols.attribution
    if a is not None:
        pr = _sc.precision_recall_at_k(sim, a["gt"], a["targets"], a["sources"], a["n_relevant"])
        for k, row in pr.iterrows():
            out[f"p@{k}"] = float(row["precision"])
            out[f"r@{k}"] = float(row["recall"])
        out["mean_p@k"] = float(pr["precision"].mean())
    for name, d in protocols.dds.items():
        out[name] = _sc.dds_score(sim, d["gt"], d["tasks"])
    if protocols.tree is not None:
        z = _trees.cluster(sim.to_numpy(), tree["method"], tree["distance"],
                           tree["optimal_ordering"])
        agree = _sc.tree_agreement(z, list(sim.index), protocols.tree["z"],
                                   protocols.tree["labels"], n_clusters)
        out["tree_cophenetic"] = agree["cophenetic_correlation"]
        out["tree_adjusted_rand"] = agree["adjusted_rand"]
    return out


class FastScorer:
    """Numpy equivalent of :func:`score_matrix` for one fixed label order (about 50x faster:
    the bootstrap and permutation loops call it thousands of times). Tested equal to it."""

    def __init__(self, labels: Sequence[str], protocols: Protocols, tree: Mapping[str, Any],
                 n_clusters: int = 4) -> None:
        from scipy.stats import rankdata

        self._rank = rankdata
        self.labels = list(labels)
        pos = {x: i for i, x in enumerate(self.labels)}
        self.tree = dict(tree)
        self.n_clusters = n_clusters
        self.pk = None
        a = protocols.attribution
        if a is not None:
            rel = _sc.top_sources(a["gt"], a["targets"], a["sources"], a["n_relevant"])
            cand = [[s for s in a["sources"] if s != t] for t in a["targets"]]
            self.pk = {
                "rows": np.array([[pos[c] for c in cs] for cs in cand]),
                "cols": np.array([pos[t] for t in a["targets"]]),
                "rel": np.array([[c in rel[t] for c in cs] for t, cs in zip(a["targets"], cand)]),
                "ks": np.arange(1, len(a["sources"])), "n_rel": a["n_relevant"],
            }
        self.dds = {}
        for name, d in protocols.dds.items():
            idx = np.array([pos[t] for t in d["tasks"]])
            g = d["gt"].loc[d["tasks"], d["tasks"]].to_numpy(dtype=float)
            self.dds[name] = (idx, self._zranks(g))
        self.tr = None
        if protocols.tree is not None:
            ref_labels = list(protocols.tree["labels"])
            common = [x for x in self.labels if x in set(ref_labels)]
            rpos = {x: i for i, x in enumerate(ref_labels)}
            ri = np.array([rpos[x] for x in common])
            rc = _trees.cophenetic_matrix(protocols.tree["z"])[np.ix_(ri, ri)]
            iu = np.triu_indices(len(common), 1)
            rcut = _trees.cut(protocols.tree["z"], n_clusters)[ri]
            self.tr = {"mi": np.array([pos[x] for x in common]), "iu": iu, "ref": rc[iu],
                       "ref_cut": rcut}

    def _zranks(self, m: np.ndarray) -> np.ndarray:
        r = self._rank(m, axis=0)
        r = r - r.mean(axis=0)
        n = np.sqrt((r * r).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return r / n

    def __call__(self, values: np.ndarray) -> dict[str, float]:
        v = np.asarray(values, dtype=float)
        out: dict[str, float] = {}
        if self.pk is not None:
            pk = self.pk
            vals = v[pk["rows"], pk["cols"][:, None]]
            if not np.isfinite(vals).all():
                raise ValueError("non-finite similarities")
            order = np.argsort(-vals, axis=1, kind="stable")
            hits = np.cumsum(np.take_along_axis(pk["rel"], order, axis=1), axis=1)
            ks = pk["ks"]
            h = hits[:, ks - 1]
            prec = (h / ks).mean(axis=0)
            rec = (h / pk["n_rel"]).mean(axis=0)
            for k, p_, r_ in zip(ks, prec, rec):
                out[f"p@{k}"] = float(p_)
                out[f"r@{k}"] = float(r_)
            out["mean_p@k"] = float(prec.mean())
        for name, (idx, gz) in self.dds.items():
            m = v[np.ix_(idx, idx)]
            if not np.isfinite(m).all():
                raise ValueError("non-finite similarities")
            out[name] = float(np.mean((self._zranks(m) * gz).sum(axis=0)))
        if self.tr is not None:
            t = self.tr
            z = _trees.cluster(v, self.tree["method"], self.tree["distance"],
                               self.tree["optimal_ordering"])
            cut = _trees.cut(z, self.n_clusters)[t["mi"]]
            c = _trees.cophenetic_matrix(z)[np.ix_(t["mi"], t["mi"])][t["iu"]]
            out["tree_cophenetic"] = float(np.corrcoef(c, t["ref"])[0, 1])
            out["tree_adjusted_rand"] = float(_sc.adjusted_rand_index(cut, t["ref_cut"]))
        return out


# ------------------------------------------------------------------------------------------------
# bootstrap sources


def bootstrap_source(method: str, models: Sequence[str], sim: SimilarityFile,
                     rdm_files: Mapping[str, str] | None = None,
                     activation_files: Mapping[str, str] | None = None, layer: str | None = None,
                     options: Mapping[str, Any] | None = None, max_mb: int = 4000,
                     ) -> tuple[Callable[[np.ndarray], pd.DataFrame] | None, str, str]:
    """``(similarity_fn(index) -> DataFrame, kind, reason)`` rebuilding the matrix of ``method``
    on resampled images, the way its method-table entry declares (``bootstrap``), with the
    analysis's own ``options``; ``similarity_fn`` is None (and ``reason`` says why) where
    impossible.

    * ``rdms``: stored RDMs ``R/rdms/{model}.h5:/rdms/{layer}``, image pairs resampled
      (duplicates dropped), compared as the analysis compares them.
    * ``per_image``: the per-image similarities stored in the matrix file (``/per_image``).
    * ``grams``: feature-centred Gram matrices of the activations, resampled and re-centred, then
      the method on those Grams (exactly a recomputation on the resampled images).
    * ``recompute``: the method run again on the resampled activations (in memory, if the
      layer's features fit in ``max_mb``).
    """
    from tasksim.similarity.registry import get_method

    spec = get_method(method)
    models = list(models)
    options = dict(options or {})
    kind = spec.bootstrap
    if kind == "per_image":
        if sim.per_image is None:
            return None, kind, "the similarity file has no /per_image cosines"
        return _unc.attribution_similarity_fn(sim.per_image, models), kind, ""
    if kind == "rdms":
        missing = [m for m in models if not rdm_files or m not in rdm_files]
        if missing:
            return None, kind, f"no stored RDMs for {missing}"
        rdms = []
        for m in models:
            with open_h5(rdm_files[m]) as f:
                rdms.append(np.asarray(f[f"rdms/{layer}"][...], dtype=np.float32))
        comparison = options.get("comparison", spec.options().get("comparison", "spearman"))
        return _unc.rsa_similarity_fn(np.stack(rdms), models, comparison=comparison), kind, ""
    missing = [m for m in models if not activation_files or m not in activation_files]
    if missing:
        return None, kind, f"no activations for {missing}"
    from tasksim.similarity import rsa as _rsa

    def load(m: str) -> np.ndarray:
        with open_h5(activation_files[m]) as f:
            return f[f"layers/{layer}"][...]

    if kind == "grams":
        from tasksim.similarity import cka as _cka

        grams = np.stack([_rsa.accumulate_gram(_rsa.iter_column_blocks(load(m)), "center").gram
                          for m in models])
        assert spec.from_stored is not None  # register() requires it for this kind
        gram_options = {k: v for k, v in options.items()
                        if k in inspect.signature(spec.from_stored).parameters}

        def gram_fn(index: np.ndarray) -> pd.DataFrame:
            ks = [_cka.center_gram(g[np.ix_(index, index)]) for g in grams]
            s = spec.from_stored(ks, **gram_options)
            return pd.DataFrame(s, index=models, columns=models)

        return gram_fn, kind, ""
    with open_h5(activation_files[models[0]]) as f:
        shape = f[f"layers/{layer}"].shape
    mb = len(models) * int(np.prod(shape)) * 8 / 2**20
    if mb > max_mb:
        return None, kind, (f"features of layer {layer} take {mb:.0f} MB > "
                            f"taxonomy.recompute_max_mb = {max_mb}")
    acts = [np.asarray(load(m), dtype=np.float64) for m in models]

    def recompute_fn(index: np.ndarray) -> pd.DataFrame:
        s, _ = spec.fn([a[index] for a in acts], **options)
        return pd.DataFrame(s, index=models, columns=models)

    return recompute_fn, kind, ""


# ------------------------------------------------------------------------------------------------
# one analysis


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def score_analysis(sim: pd.DataFrame, protocols: Protocols, tree: Mapping[str, Any], *,
                   n_images: int, similarity_fn: Callable[[np.ndarray], pd.DataFrame] | None,
                   n_bootstrap: int, n_permutations: int, seed: int = 0, level: float = 0.95,
                   n_clusters: int = 4, bootstrap_reason: str = "",
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Scores of one similarity matrix with bootstrap intervals and permutation p-values.

    Returns the ``scores`` / ``protocols`` / ``bootstrap`` / ``permutation`` parts of the score
    JSON. Each score: ``estimate`` (all images; the stored matrix), ``low`` / ``high`` (percentile
    interval of ``similarity_fn`` rescored on ``n_bootstrap`` image resamples; null when not
    available), ``p_value`` (``(1 + #{null >= observed}) / (1 + n_permutations)`` over joint
    row/column permutations of the matrix, as :func:`tasksim.uncertainty.permutation_test`).
    """
    say = log or (lambda _msg: None)
    rng = np.random.default_rng(seed)

    fast = FastScorer(list(sim.index), protocols, tree, n_clusters)
    order = list(sim.index)

    def score(s: pd.DataFrame) -> dict[str, float]:
        if list(s.index) != order:
            s = s.loc[order, order]
        return fast(s.to_numpy())

    est = score(sim)
    keys = list(est)
    boot: dict[str, Any] = {"n": 0, "available": False, "reason": bootstrap_reason}
    samples = None
    if similarity_fn is not None and n_bootstrap > 0 and keys:
        if n_images < 2:
            boot["reason"] = f"n_images = {n_images} < 2"
        else:
            full = similarity_fn(np.arange(n_images))
            diff = float(np.nanmax(np.abs(full.to_numpy() - sim.loc[full.index, full.columns].to_numpy())))
            idx = _unc.bootstrap_indices(n_images, n_bootstrap, rng)
            samples = np.full((n_bootstrap, len(keys)), np.nan)
            for b, i in enumerate(idx):
                try:
                    r = score(similarity_fn(i))
                    samples[b] = [r[k] for k in keys]
                except (ValueError, np.linalg.LinAlgError) as err:  # degenerate resample
                    say(f"bootstrap resample {b} failed: {err}")
                if (b + 1) % max(1, n_bootstrap // 10) == 0:
                    say(f"bootstrap {b + 1}/{n_bootstrap}")
            boot = {"n": n_bootstrap, "available": True, "reason": "",
                    "n_failed": int(np.isnan(samples).all(axis=1).sum()),
                    "max_abs_diff_full_sample": diff}
    elif similarity_fn is not None and n_bootstrap == 0:
        boot["reason"] = "n_bootstrap = 0"
    null = None
    if n_permutations > 0 and keys:
        values, labels = sim.to_numpy(), sim.index
        null = np.empty((n_permutations, len(keys)))
        for k in range(n_permutations):
            p = rng.permutation(len(labels))
            r = fast(values[np.ix_(p, p)])
            null[k] = [r[x] for x in keys]
    scores: dict[str, Any] = {}
    for j, k in enumerate(keys):
        entry: dict[str, Any] = {"estimate": est[k], "low": None, "high": None, "level": level,
                                 "p_value": None}
        if samples is not None and np.isfinite(samples[:, j]).any():
            lo, hi = _unc.percentile_interval(samples[:, j], level)
            entry.update(low=lo, high=hi)
        if null is not None:
            entry["p_value"] = (1 + int(np.sum(null[:, j] >= est[k] - 1e-12))) / (1 + n_permutations)
            finite = null[:, j][np.isfinite(null[:, j])]
            # chance level: the score of the same matrix with its task labels shuffled
            entry["chance"] = float(finite.mean()) if finite.size else None
        scores[k] = {a: _jsonable(b) for a, b in entry.items()}
    proto: dict[str, Any] = {}
    a = protocols.attribution
    if a is not None:
        ks = list(range(1, len(a["sources"])))
        oracle = _sc.oracle_precision_at_k(a["gt"], a["targets"], a["sources"], a["n_relevant"])
        relevant = _sc.top_sources(a["gt"], a["targets"], a["sources"], a["n_relevant"])
        proto["attribution"] = {
            "groundtruth": a["groundtruth"], "targets": a["targets"], "sources": a["sources"],
            "n_relevant": a["n_relevant"], "k": ks,
            "precision": [est[f"p@{k}"] for k in ks], "recall": [est[f"r@{k}"] for k in ks],
            "precision_low": [scores[f"p@{k}"]["low"] for k in ks],
            "precision_high": [scores[f"p@{k}"]["high"] for k in ks],
            "recall_low": [scores[f"r@{k}"]["low"] for k in ks],
            "recall_high": [scores[f"r@{k}"]["high"] for k in ks],
            "oracle_precision": [float(x) for x in oracle.to_numpy()],
            "random_precision": _sc.random_precision_at_k(len(a["sources"]) - 1, a["n_relevant"]),
            "relevant": relevant,
            "predicted_top5": {t: _sc.ranked_candidates(sim, t, a["sources"])[:5]
                               for t in a["targets"]},
        }
    for name, d in protocols.dds.items():
        per = _sc.dds_per_target(sim, d["gt"], d["tasks"])
        proto[name] = {"tasks": d["tasks"], "groundtruth": d["groundtruth"],
                       "per_target": {t: _jsonable(float(v)) for t, v in per.items()}}
    if protocols.tree is not None:
        proto["tree"] = {"reference_labels": protocols.tree["labels"],
                         "common": protocols.tree["common"], "n_clusters": n_clusters,
                         "reference": protocols.tree.get("reference", "the reference tree")}
    for name, reason in protocols.skipped.items():
        proto[name] = {"skipped": reason}
    return {"scores": scores, "protocols": proto, "bootstrap": boot,
            "permutation": {"n": n_permutations, "scheme": "joint row/column permutation of task labels"}}


# ------------------------------------------------------------------------------------------------
# summary


def summary_table(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per analysis x headline score (:data:`HEADLINE_SCORES`), skipped protocols included."""
    rows = []
    for r in results:
        protos = r.get("protocols", {})
        for key in HEADLINE_SCORES:
            protocol, _ = SCORE_LABELS[key]
            s = r.get("scores", {}).get(key)
            pname = {"attribution": "attribution", "dds": key, "tree": "tree"}[protocol]
            note = protos.get(pname, {}).get("skipped", "")
            if s is None and not note:
                continue
            if s is not None and s.get("low") is None:
                note = r.get("bootstrap", {}).get("reason", "") or "no interval"
            rows.append({
                "method": r["method"], "layer": r["layer"], "protocol": protocol, "score": key,
                "description": score_description(key, protos), "estimate": None if s is None else s["estimate"],
                "ci_low": None if s is None else s["low"], "ci_high": None if s is None else s["high"],
                "p_value": None if s is None else s["p_value"],
                "chance": None if s is None else s.get("chance"), "n_images": r.get("n_images"),
                "n_bootstrap": r.get("bootstrap", {}).get("n", 0),
                "n_permutations": r.get("permutation", {}).get("n", 0), "note": note,
            })
    cols = ["method", "layer", "protocol", "score", "description", "estimate", "ci_low", "ci_high",
            "p_value", "chance", "n_images", "n_bootstrap", "n_permutations", "note"]
    return pd.DataFrame(rows, columns=cols)


#: Headline scores of the front page, in order of preference (the first one with a value is used).
FRONT_PAGE_SCORES: tuple[str, ...] = ("dds_affinity", "mean_p@k", "tree_cophenetic")


def headline_rst(table: pd.DataFrame, results: Sequence[Mapping[str, Any]], run: str,
                 probe: Mapping[str, Any], n_best: int = 3) -> str:
    """The report's front page (reStructuredText): what was run and what came out.

    Names the run, the models, the probe set and the ground truth; the ``n_best`` analyses by the
    first available score of :data:`FRONT_PAGE_SCORES` with their intervals and p-values and the
    chance level (the score with permuted task labels); and where the main figures are.
    """
    def num(x: Any) -> str:
        return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{float(x):.3f}"

    models = list(results[0]["models"]) if results else []
    kind = results[0].get("groundtruth", "taskonomy") if results else "taskonomy"
    n_images = sorted({int(r["n_images"]) for r in results if r.get("n_images")})
    lines = ["tasksim: task taxonomies from model similarity", "=" * 47, "",
             f"**Run**: {run}. **Models** ({len(models)}): {', '.join(models) or 'none'}. "
             f"**Probe set** ``{probe.get('name')}``: {', '.join(map(str, n_images)) or '?'} images "
             f"(source ``{probe.get('source')}``).", "",
             f"**Ground truth**: the {groundtruth_label(kind, 'dds_affinity')}"
             + (" (Mini-Taskonomy: transfer measured with readouts from every frozen encoder)"
                if kind == "minitaskonomy" else " (Zamir et al., CVPR 2018)") + ".", ""]
    key = next((k for k in FRONT_PAGE_SCORES
                if not table[(table["score"] == k) & table["estimate"].notna()].empty), None)
    if key is None:
        lines += ["**Result**: no score could be computed for this run; the summary table "
                  "(Scores / summary table) gives each protocol's reason.", ""]
    else:
        rows = table[(table["score"] == key) & table["estimate"].notna()].sort_values(
            "estimate", ascending=False)
        chance = {(r["method"], r["layer"]): r.get("scores", {}).get(key, {}).get("chance")
                  for r in results}
        lines += [f"**Result** ({describe_score(table, key)}; interval: "
                  f"{int(round(100 * results[0]['scores'][key].get('level', 0.95)))} % bootstrap over "
                  f"probe images; chance: the same matrix with its task labels permuted):", ""]
        for rank, (_, r) in enumerate(rows.head(n_best).iterrows(), 1):
            ci = (f" [{num(r.ci_low)}, {num(r.ci_high)}]" if pd.notna(r.ci_low) and pd.notna(r.ci_high)
                  else " (no interval)")
            pv = (f", {_unc.format_p_value(float(r.p_value), int(r.n_permutations or 0))}"
                  if pd.notna(r.p_value) else "")
            lines.append(f"{rank}. **{r.method} / {r.layer}**: {num(r.estimate)}{ci}{pv}; "
                         f"chance {num(chance.get((r.method, r.layer)))}")
        worst = rows.iloc[-1]
        lines += ["", f"Weakest of the {len(rows)} analyses: {worst.method} / {worst.layer}, "
                      f"{num(worst.estimate)}.", ""]
    lines += ["**Figures**: *Scores* holds the summary table and the bar charts of each protocol "
              "(DDS protocol: ``figures/dds_correlations.png``; attribution-paper protocol: P@K / R@K "
              "curves; tree agreement); *Task trees* the tree of every method and layer and the "
              "reference tree; *Similarity heatmaps* each matrix ordered by its tree; *Similarity "
              "matrices* the matrices as tables; *Similarity vs transfer affinity* "
              "one scatter panel per target. Every caption names what it shows and against which "
              "ground truth.", ""]
    return "\n".join(lines) + "\n"


def describe_score(table: pd.DataFrame, key: str) -> str:
    """The description of score ``key`` in a summary table (its ground truth named), or the generic one."""
    rows = table.loc[table["score"] == key, "description"] if "description" in table else []
    return str(rows.iloc[0]) if len(rows) else SCORE_LABELS[key][1]


def _p_text(row: Any) -> str:
    """The p-value of a summary-table row at its test's resolution ('' where there is none)."""
    if row.p_value is None or pd.isna(row.p_value):
        return ""
    return _unc.format_p_value(float(row.p_value), int(row.n_permutations or 0))


def summary_markdown(table: pd.DataFrame, title: str = "Agreement with the transfer ground truth") -> str:
    """Markdown rendering of :func:`summary_table` (one row per analysis x score)."""

    def fmt(x: Any, digits: int = 3) -> str:
        if x is None or (isinstance(x, float) and not np.isfinite(x)):
            return ""
        return f"{x:.{digits}f}" if isinstance(x, float) else str(x)

    lines = [f"# {title}", "",
             "estimate on all probe images; 95 % CI = bootstrap percentile interval over images; "
             "p = permutation p-value over task labels.", "",
             "| method | layer | score | estimate | CI | p | images | note |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        ci = (f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]" if r.ci_low is not None and pd.notna(r.ci_low)
              else "")
        lines.append(f"| {r.method} | {r.layer} | {r.score} | {fmt(r.estimate)} | {ci} | "
                     f"{_p_text(r)} | "
                     f"{fmt(r.n_images)} | {str(r.note).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def group_of(name: str) -> str | None:
    """Task group of a model name (None for user models)."""
    return _tasks.group(name)
