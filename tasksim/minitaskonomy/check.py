"""The scientific self-check of Mini-Taskonomy: does a label-free similarity predict transfer?

* :func:`random_encoder_features` gives the **random-encoder baseline**: the same architecture as
  the task encoders, randomly initialised (one seed per task, never trained), run on the probe
  images exactly as the pipeline runs the trained encoders. Any similarity method applied to
  these features must score about 0 against the measured affinity; a method that scores well
  on them would be measuring the architecture, not the tasks.
* :func:`score_against_affinity` is the DDS protocol on the mini universe (mean over targets of
  the per-target Spearman between a similarity column and the affinity column, with or without
  the target's own entry) with a task-label permutation p-value.
* :func:`tree_groups` lists the clusters of a task tree with each task's Taskonomy group
  (2D / 3D / semantic / geometric), for reading off the structure of a tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from tasksim.minitaskonomy.models import build_encoder
from tasksim.probe.preprocess import network_input


@torch.no_grad()
def random_encoder_features(images: np.ndarray, names: Sequence[str], seed: int = 1000,
                            layer: str = "encoder_output", batch_size: int = 100) -> dict[str, np.ndarray]:
    """Features ``[N, D]`` of one randomly initialised encoder per name (seed ``seed + i``).

    ``images`` are uint8 ``[N, S, S, 3]`` probe images (the probe file's ``/images``),
    preprocessed like the pipeline does for these encoders (range [-1, 1], no low-saturation
    clip); ``layer`` is one of the encoder's recorded layers."""
    out = {}
    for i, name in enumerate(names):
        torch.manual_seed(seed + i)
        enc = build_encoder().eval()
        module = enc.get_submodule(layer)
        store: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda _m, _i, o: store.append(o.detach()))
        try:
            for lo in range(0, len(images), batch_size):
                enc(network_input(images[lo:lo + batch_size], False))
        finally:
            handle.remove()
        feats = torch.cat(store)
        out[name] = feats.reshape(len(feats), -1).numpy().astype(np.float64)
    return out


def mean_target_spearman(similarity: pd.DataFrame, affinity: pd.DataFrame, own_entry: bool = True) -> float:
    """Mean over the similarity's tasks (as targets) of the Spearman between the similarity
    column and the affinity column over the tasks as sources.

    ``own_entry=True`` is the DDS protocol (the target's own entry included: similarity 1 vs the
    own encoder's affinity). Because every similarity matrix has its maximum on the diagonal and
    a task's own encoder usually transfers best, that entry alone lifts the score of *any*
    matrix, even one of random encoders, above 0 (by about 0.3 with 10 tasks); ``False`` ranks
    only the other sources, so chance is 0."""
    from scipy.stats import spearmanr

    tasks = list(similarity.index)
    vals = []
    for t in tasks:
        src = tasks if own_entry else [s for s in tasks if s != t]
        vals.append(spearmanr(similarity.loc[src, t].to_numpy(float), affinity.loc[src, t].to_numpy(float)).statistic)
    return float(np.mean(vals))


def score_against_affinity(similarity: pd.DataFrame, affinity: pd.DataFrame, n_permutations: int = 1000,
                           seed: int = 0, own_entry: bool = True) -> dict[str, float]:
    """:func:`mean_target_spearman` with a task-label permutation p-value.

    Returns ``{"score": ..., "p_value": ... (joint row/column shuffles of the task labels; NaN
    without permutations), "n_targets": ...}``."""
    from tasksim.taxonomy.uncertainty import permutation_test

    tasks = list(similarity.index)
    missing = [t for t in tasks if t not in affinity.index or t not in affinity.columns]
    if missing:
        raise KeyError(f"affinity has no row/column for {missing}")

    def score(sim: pd.DataFrame) -> float:
        return mean_target_spearman(sim, affinity, own_entry)

    res = permutation_test(similarity, score, n_permutations, seed) if n_permutations else None
    return {"score": score(similarity), "p_value": float(res.p_value) if res else float("nan"),
            "n_targets": len(tasks)}


def tree_groups(z: np.ndarray, labels: Sequence[str], n_clusters: int) -> list[list[tuple[str, str]]]:
    """Clusters of the tree cut into ``n_clusters``: per cluster ``[(task, group), ...]``."""
    from tasksim.tasks import group
    from tasksim.taxonomy.trees import cut

    ids = cut(z, n_clusters)
    clusters: dict[int, list[tuple[str, str]]] = {}
    for name, c in zip(labels, ids, strict=True):
        clusters.setdefault(int(c), []).append((name, group(name) or "?"))
    return [clusters[c] for c in sorted(clusters)]


def per_target_spearman(matrix: pd.DataFrame, reference: pd.DataFrame, sources: Sequence[str],
                        targets: Sequence[str]) -> pd.Series:
    """Per target, Spearman between ``matrix[sources, t]`` and ``reference[sources, t]``."""
    from scipy.stats import spearmanr

    out = {}
    for t in targets:
        a = matrix.loc[list(sources), t].to_numpy(dtype=float)
        b = reference.loc[list(sources), t].to_numpy(dtype=float)
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError(f"non-finite entries in the column of target {t}")
        out[t] = float(spearmanr(a, b).statistic)
    return pd.Series(out, name="spearman").rename_axis("target")


def shared_tasks(mini: pd.DataFrame, taskonomy: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Sources and targets that Mini-Taskonomy and a Taskonomy matrix both have (task names only,
    in the mini matrix's order; targets with a missing Taskonomy entry are dropped)."""
    from tasksim.tasks import is_known

    sources = [t for t in mini.columns if is_known(t) and t in mini.index and t in taskonomy.index]
    targets = [t for t in sources if t in taskonomy.columns
               and np.isfinite(taskonomy.loc[sources, t].to_numpy(dtype=float)).all()]
    return sources, targets


def taskonomy_comparison(mini_affinity: pd.DataFrame, taskonomy_affinity: pd.DataFrame,
                         similarities: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Agreement with the original Taskonomy affinity on the shared task names.

    One row for the measured Mini-Taskonomy affinity itself and one per analysis (``{method}/
    {layer}`` -> similarity matrix): the mean over shared targets of the per-target Spearman
    against Taskonomy (sources = the shared tasks, own entry included), with the number of
    sources and targets and the per-target values as JSON."""
    sources, targets = shared_tasks(mini_affinity, taskonomy_affinity)
    if len(targets) < 2 or len(sources) < 3:
        raise ValueError(f"too few shared tasks with Taskonomy: sources {sources}, targets {targets}")
    rows = []
    for name, m in {"measured mini affinity": mini_affinity, **similarities}.items():
        per = per_target_spearman(m, taskonomy_affinity, sources, targets)
        rows.append({"matrix": name, "mean_spearman": float(per.mean()), "n_sources": len(sources),
                     "n_targets": len(targets), "per_target": per.round(4).to_json()})
    return pd.DataFrame(rows)
