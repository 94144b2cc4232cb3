"""Score a task matrix that a user brings against the original Taskonomy affinities.

The pipeline scores the matrices it computes (:mod:`tasksim.taxonomy`); this module does the same
for any CSV a user has: a task x task *similarity* (entry ``[a, b]`` = similarity of ``a`` to
``b``; column ``t`` is read for target ``t``) or a source x target *transferability* (higher =
better transfer from the row to the column). Tasks are the CSV's header and index, in any known
spelling (taskbank ``rgb2depth``, visualpriors ``depth_zbuffer``, pickle ``segmentsemantic_rb``),
mapped to the canonical name by :func:`tasksim.tasks.canonical`.

The protocols are those of :mod:`tasksim.taxonomy.scoring` on the paper task sets, restricted to the
tasks the matrix has (a note says when the set is incomplete, so the value is not comparable
with published figures):

* ``attribution``: P@K / R@K against the top-5 sources of ``all_affinities_16k`` (18 targets,
  20 candidate sources, K = 1..19 for the full set);
* ``dds_affinity`` / ``dds_wins_vs_pixels``: mean over targets of the per-target Spearman against
  the unsuffixed affinities / ``wins_vs_pixels_16k`` (17 tasks), with the target's own entry
  (the DDS protocol) and, as ``..._no_own``, without it;
* ``tree``: cophenetic correlation and adjusted Rand index of the k-cluster cuts against the
  Taskonomy reference tree (:func:`tasksim.taxonomy.groundtruth.taskonomy_tree`). A similarity matrix is
  clustered like the pipeline's matrices (:func:`tasksim.taxonomy.trees.cluster`); a transferability
  matrix like the reference itself (transfer-out ranks, average linkage).

A full 20-task similarity matrix gets exactly the estimates the pipeline's ``scores`` rule
computes for it (tests/test_cli.py checks this against :func:`tasksim.taxonomy.score_matrix`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tasksim import tasks as _tasks
from tasksim.taxonomy import groundtruth as _gt
from tasksim.taxonomy import scoring as _sc
from tasksim.taxonomy import trees as _trees

__all__ = [
    "KINDS", "GROUNDTRUTH_FILES", "MIN_SHARED_TASKS", "MatrixFileError", "read_task_matrix",
    "default_cache_dir", "load_groundtruth", "score_task_matrix",
]

#: The two kinds of matrix: task x task similarity, source x target transferability.
KINDS: tuple[str, ...] = ("similarity", "transferability")

#: Ground-truth file (kind, variant) of each protocol.
GROUNDTRUTH_FILES: dict[str, tuple[str, str]] = {
    "attribution": ("affinity", "16k"),
    "dds_affinity": ("affinity", "base"),
    "dds_wins_vs_pixels": ("wins_vs_pixels", "16k"),
}

#: Fewest paper tasks a matrix must share with the ground truth.
MIN_SHARED_TASKS = 3

_COLUMNS = ["protocol", "score", "value", "n_sources", "n_targets", "groundtruth", "note"]


class MatrixFileError(ValueError):
    """A matrix file cannot be scored; the message names the file and the problem."""


# ------------------------------------------------------------------------------------------------
# reading


def _canonical_labels(path: Path, names: Sequence[str], where: str) -> list[str]:
    out: list[str] = []
    first: dict[str, str] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            raise MatrixFileError(f"{path}: empty task name in the {where}")
        if not _tasks.is_known(name):
            raise MatrixFileError(
                f"{path}: unknown task name {name!r} in the {where} (valid: {', '.join(_tasks.TASKS)}; "
                f"old taskbank names such as rgb2depth are accepted too)")
        c = _tasks.canonical(name)
        if c in first:
            same = f" (as {first[c]!r} and {name!r})" if first[c] != name else ""
            raise MatrixFileError(f"{path}: duplicate task {c!r} in the {where}{same}")
        first[c] = name
        out.append(c)
    return out


def _number(path: Path, cell: str, row: str, col: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        what = "empty cell" if not cell.strip() else f"non-numeric cell {cell.strip()!r}"
        raise MatrixFileError(f"{path}: {what} at row {row!r}, column {col!r}") from None
    if not math.isfinite(value):
        raise MatrixFileError(f"{path}: non-finite cell {cell.strip()!r} at row {row!r}, column {col!r}")
    return value


def read_task_matrix(path: str | os.PathLike[str], kind: str = "similarity") -> pd.DataFrame:
    """Read and check a task matrix CSV: header = tasks (targets), first column = tasks (sources).

    Returns a float DataFrame with canonical task names; a similarity matrix has its columns in
    the order of its index. Raises :class:`MatrixFileError` naming the file and the problem: a
    missing or empty file, a row with the wrong number of cells, an unknown or duplicate task
    name (after canonicalisation), an empty, non-numeric or non-finite cell, a similarity matrix
    that is not square or whose header and index name different tasks, or fewer than
    :data:`MIN_SHARED_TASKS` tasks shared with the ground truth's paper tasks.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}; valid: {', '.join(KINDS)}")
    path = Path(path)
    if not path.is_file():
        raise MatrixFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise MatrixFileError(f"{path}: not a readable CSV file ({err})") from None
    if len(rows) < 2:
        raise MatrixFileError(f"{path}: needs a header row of tasks and at least one row of values")
    header = rows[0][1:]
    if not header:
        raise MatrixFileError(f"{path}: the header row has no task names after the index column")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header) + 1:
            raise MatrixFileError(f"{path}: row {i} ({r[0].strip()!r}) has {len(r) - 1} values, "
                                  f"the header names {len(header)} tasks")
    cols = _canonical_labels(path, header, "header")
    index = _canonical_labels(path, [r[0] for r in rows[1:]], "index column")
    values = np.array([[_number(path, c, r[0].strip(), h.strip()) for c, h in zip(r[1:], header)]
                       for r in rows[1:]], dtype=float)
    m = pd.DataFrame(values, index=pd.Index(index, name="source"),
                     columns=pd.Index(cols, name="target"))
    if kind == "similarity":
        if len(index) != len(cols):
            raise MatrixFileError(f"{path}: a similarity matrix must be square, got {len(index)} rows "
                                  f"x {len(cols)} columns")
        only_h = [c for c in cols if c not in set(index)]
        only_i = [c for c in index if c not in set(cols)]
        if only_h or only_i:
            raise MatrixFileError(f"{path}: header and index name different tasks (only in the header: "
                                  f"{only_h}; only in the index: {only_i})")
        m = m.loc[:, index]
    shared = [t for t in _tasks.PAPER_TASKS if t in set(index) | set(cols)]
    if len(shared) < MIN_SHARED_TASKS:
        raise MatrixFileError(f"{path}: only {len(shared)} task(s) shared with the Taskonomy ground "
                              f"truth's 20 paper tasks ({shared}); at least {MIN_SHARED_TASKS} are needed")
    return m


# ------------------------------------------------------------------------------------------------
# ground truth


def default_cache_dir() -> Path:
    """Where downloaded ground-truth files are kept: ``$XDG_CACHE_HOME/tasksim/taskonomy``
    (``~/.cache/tasksim/taskonomy`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tasksim" / "taskonomy"


def load_groundtruth(source: str | os.PathLike[str] = _gt.DEFAULT_SOURCE,
                     cache_dir: str | os.PathLike[str] | None = None) -> dict[str, pd.DataFrame]:
    """The ground truth of each protocol (:data:`GROUNDTRUTH_FILES`) as source x target matrices.

    ``source`` is what ``taxonomy.groundtruth_source`` accepts (:func:`tasksim.taxonomy.groundtruth.
    resolve_source`): the raw URL base of Taskonomy's ``results/`` (default), a ``file://`` URL
    or a local mirror directory. Every file is SHA-256 verified before it is parsed; remote
    files are downloaded once into ``cache_dir`` (default :func:`default_cache_dir`).
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return {name: _gt.load_matrix(source, k, v, cache_dir=cache)
            for name, (k, v) in GROUNDTRUTH_FILES.items()}


# ------------------------------------------------------------------------------------------------
# scoring


def _row(protocol: str, score: str, value: float | None, n_sources: int, n_targets: int,
         groundtruth: str, note: str = "") -> dict[str, object]:
    return {"protocol": protocol, "score": score, "value": value, "n_sources": n_sources,
            "n_targets": n_targets, "groundtruth": groundtruth, "note": note}


def _subset_note(*counts: tuple[int, int, str]) -> str:
    """``"3 of the 18 paper targets, 3 of the 20 paper sources: not comparable ..."`` or ``""``."""
    parts = [f"{n} of the {full} paper {what}" for n, full, what in counts if n != full]
    return f"{', '.join(parts)}: not comparable with published figures" if parts else ""


def _gt_name(protocol: str) -> str:
    return _gt.relpath(*GROUNDTRUTH_FILES[protocol]).rsplit("/", 1)[-1]


def _attribution_rows(m: pd.DataFrame, gt: pd.DataFrame, all_k: bool) -> list[dict[str, object]]:
    src = [t for t in _sc.ATTRIBUTION_SOURCES if t in m.index]
    tgt = [t for t in _sc.ATTRIBUTION_TARGETS if t in m.columns and t in gt.columns]
    name = _gt_name("attribution")
    if len(src) < 3 or not tgt:
        return [_row("attribution", "p@k", None, len(src), len(tgt), name,
                     f"skipped: needs at least 3 paper sources and 1 paper target, has {src} / {tgt}")]
    n_rel = min(_sc.N_RELEVANT, len(src) - 2)
    pr = _sc.precision_recall_at_k(m, gt, tgt, src, n_rel)
    notes = [f"top-{n_rel} sources relevant; random P@K = {_sc.random_precision_at_k(len(src) - 1, n_rel):.3f}",
             _subset_note((len(tgt), len(_sc.ATTRIBUTION_TARGETS), "targets"),
                          (len(src), len(_sc.ATTRIBUTION_SOURCES), "sources"))]
    note = "; ".join(n for n in notes if n)
    ks = list(pr.index) if all_k else [k for k in (1, 5) if k in pr.index]
    rows = [_row("attribution", f"p@{k}", float(pr.loc[k, "precision"]), len(src), len(tgt), name, note)
            for k in ks]
    rows += [_row("attribution", f"r@{k}", float(pr.loc[k, "recall"]), len(src), len(tgt), name, note)
             for k in (list(pr.index) if all_k else [k for k in (5,) if k in pr.index])]
    rows.append(_row("attribution", "mean_p@k", float(pr["precision"].mean()), len(src), len(tgt), name,
                     f"mean of P@K over K = 1..{max(pr.index)}" + (f"; {note}" if note else "")))
    return rows


def _dds_rows(protocol: str, m: pd.DataFrame, gt: pd.DataFrame) -> list[dict[str, object]]:
    src = [t for t in _sc.DDS_TASKS if t in m.index and t in gt.index]
    tgt = [t for t in _sc.DDS_TASKS if t in m.columns and t in gt.columns]
    name = _gt_name(protocol)
    if len(src) < 3 or not tgt:
        return [_row(protocol, protocol, None, len(src), len(tgt), name,
                     f"skipped: needs at least 3 DDS sources and 1 DDS target, has {src} / {tgt}")]
    subset = _subset_note((len(tgt), len(_sc.DDS_TASKS), "targets"),
                          (len(src), len(_sc.DDS_TASKS), "sources"))
    rows = []
    own = [t for t in tgt if t in src]
    if own:
        v = _sc.dds_score(m, gt, src, targets=own)
        note = "target's own entry included (DDS protocol)"
        if len(own) < len(tgt):
            note += f"; over the {len(own)} targets that are also sources"
        rows.append(_row(protocol, protocol, v, len(src), len(own), name,
                         note + (f"; {subset}" if subset else "")))
    else:
        rows.append(_row(protocol, protocol, None, len(src), len(tgt), name,
                         "skipped: no target is also a source (no own entry); see _no_own"))
    v = _sc.dds_score(m, gt, src, targets=tgt, own_entry=False)
    rows.append(_row(protocol, f"{protocol}_no_own", v, len(src), len(tgt), name,
                     "target's own entry left out" + (f"; {subset}" if subset else "")))
    return rows


def _tree_rows(m: pd.DataFrame, gt16: pd.DataFrame, kind: str, tree: Mapping[str, object],
               n_clusters: int) -> list[dict[str, object]]:
    z_ref, ref_labels = _gt.taskonomy_tree(gt16)
    name = _gt_name("attribution")
    need = max(3, n_clusters)
    if kind == "similarity":
        labels = list(m.index)
        common = [t for t in ref_labels if t in set(labels)]
        how = (f"{tree['method']} linkage, {tree['distance']} distance, all {len(labels)} tasks of "
               f"the matrix")
        if len(common) >= need and len(labels) >= n_clusters:
            z = _trees.cluster(m.to_numpy(), str(tree["method"]), str(tree["distance"]),
                               bool(tree["optimal_ordering"]))
    else:
        targets = tuple(t for t in _gt.TREE_TARGETS if t in m.columns)
        labels = [t for t in _gt.TREE_TASKS if t in m.index]
        common = labels
        how = (f"transfer-out ranks over {len(targets)} targets, average linkage (as the "
               f"reference tree)")
        if len(common) >= need and targets:
            z, labels = _gt.taskonomy_tree(m, tuple(labels), targets)
    if len(common) < need or (kind == "transferability" and not targets):
        return [_row("tree", "tree_cophenetic", None, len(common), len(common), name,
                     f"skipped: needs at least {need} of the 20 tree tasks, has {common}")]
    agree = _sc.tree_agreement(z, labels, z_ref, ref_labels, n_clusters)
    subset = _subset_note((len(common), len(_gt.TREE_TASKS), "tree tasks"))
    note = how + (f"; {subset}" if subset else "")
    return [_row("tree", "tree_cophenetic", agree["cophenetic_correlation"], len(common), len(common),
                 name, note),
            _row("tree", "tree_adjusted_rand", agree["adjusted_rand"], len(common), len(common), name,
                 f"{n_clusters}-cluster cuts; {note}")]


#: Clustering of a similarity matrix's tree: the pipeline's defaults (taxonomy.linkage,
#: taxonomy.distance, taxonomy.optimal_ordering; the RSA paper's choices).
TREE_DEFAULTS: dict[str, object] = {"method": "single", "distance": "rows_euclidean",
                                    "optimal_ordering": True}


def score_task_matrix(matrix: pd.DataFrame, groundtruth: Mapping[str, pd.DataFrame],
                      kind: str = "similarity", tree: Mapping[str, object] | None = None,
                      n_clusters: int = 4, all_k: bool = False) -> pd.DataFrame:
    """Scores of one matrix (from :func:`read_task_matrix`) against ``groundtruth``
    (from :func:`load_groundtruth`), one row per score.

    Columns: ``protocol``, ``score``, ``value`` (None when skipped), ``n_sources``, ``n_targets``,
    ``groundtruth`` (file name), ``note`` (task subset, own entry, skip reason). P@K and R@K are
    listed for K = 1 and 5 (``all_k``: every K). ``tree``: clustering options of a similarity
    matrix (default :data:`TREE_DEFAULTS`).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}; valid: {', '.join(KINDS)}")
    tree = {**TREE_DEFAULTS, **(tree or {})}
    rows = _attribution_rows(matrix, groundtruth["attribution"], all_k)
    rows += _dds_rows("dds_affinity", matrix, groundtruth["dds_affinity"])
    rows += _dds_rows("dds_wins_vs_pixels", matrix, groundtruth["dds_wins_vs_pixels"])
    rows += _tree_rows(matrix, groundtruth["attribution"], kind, tree, n_clusters)
    return pd.DataFrame(rows, columns=_COLUMNS)
