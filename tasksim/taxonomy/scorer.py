"""Scores of one similarity matrix under the defined protocols, with bootstrap intervals over
images and permutation p-values over task labels (the JSON of ``R/scores/{method}/{layer}.json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tasksim.taxonomy import scoring as _sc
from tasksim.taxonomy import trees as _trees
from tasksim.taxonomy import uncertainty as _unc
from tasksim.taxonomy.protocols import Protocols


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
    row/column permutations of the matrix, as :func:`tasksim.taxonomy.uncertainty.permutation_test`).
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


