"""Which scoring protocols a run defines (task sets and ground truths), and the reference tree
of a ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasksim.taxonomy import groundtruth as _gt
from tasksim.taxonomy import scoring as _sc

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


def reference_tree(affinity: pd.DataFrame, kind: str = "taskonomy",
                   method: str = "average") -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """The reference tree of a ground truth (see :func:`tasksim.taxonomy.groundtruth.taskonomy_tree`).

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


