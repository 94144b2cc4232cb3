"""The original Taskonomy affinities and win rates: verified download, safe parsing, reference tree.

Source of truth: the public repository StanfordVL/taskonomy at commit
:data:`TASKONOMY_COMMIT`, folder ``results/`` (docs/methods.md, "The ground truth").
Nine Python pickles (protocol 3), each a ``dict`` from a transfer key to ``numpy.float64``:

* ``affinities/all_affinities{,_16k,_1k}.pkl``: AHP-normalised affinities (higher = better; for a
  target, the values over all its sources of all orders plus ``self`` and ``random`` sum to 1);
* ``winrates/wins_vs_{pixels,task}{,_16k,_1k}.pkl``: win rates against the image-only network /
  the task-specific network (rates in [0, 1], not normalised per target).

Key ``a__b`` is the first-order transfer from source ``a`` to target ``b``; longer keys
(``a__b__c``) are higher-order transfers whose last name is the target. Variants are called
``"base"`` (unsuffixed file), ``"16k"`` and ``"1k"`` (number of images used to train the transfer
functions). The base files have no ``class_places`` (``class_scene``) target; their extra
``class_selected`` is a 100-class object task, not scene classification.

Safety: a pickle is never unpickled before its SHA-256 matches :data:`SHA256`, and then only by
:class:`RestrictedUnpickler`, which admits nothing but numpy scalar reconstruction and
``numpy.dtype``.

Labels: task names are mapped to the canonical (visualpriors) spelling with
:func:`tasksim.tasks.canonical`; the non-task sources/targets of the pickles keep their pickle
spelling (:data:`NON_TASK_LABELS`: ``self``, ``random``, ``pixels``, ``class_selected``).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import linkage, optimal_leaf_ordering
from scipy.spatial.distance import pdist

from tasksim import tasks as _tasks
from tasksim.download import ChecksumError, fetch, is_url, resolve
from tasksim.io import sha256_file

__all__ = [
    "TASKONOMY_COMMIT", "URL_TEMPLATE", "DEFAULT_SOURCE", "SHA256", "KINDS", "VARIANTS",
    "NON_TASK_LABELS", "ChecksumError", "RestrictedUnpickler", "relpath",
    "verify_sha256", "resolve_source", "obtain", "load_pickle", "label", "pickle_label",
    "first_order_matrix", "higher_order_table", "load_matrix", "TREE_TASKS", "TREE_TARGETS",
    "taskonomy_tree_features", "taskonomy_tree",
]

#: Commit of StanfordVL/taskonomy the ground truth is pinned to.
TASKONOMY_COMMIT = "9f814867b5fe4165860862211e8e99b0f200144d"

#: Raw-file URL of one file, ``relpath`` relative to ``results/``.
URL_TEMPLATE = ("https://raw.githubusercontent.com/StanfordVL/taskonomy/"
                + TASKONOMY_COMMIT + "/results/{relpath}")

#: Default source: the URL base (a mirror ending in ``/``) of ``results/`` at the pinned commit.
DEFAULT_SOURCE = URL_TEMPLATE.removesuffix("{relpath}")

#: SHA-256 of the nine public files (../shared/taskonomy/SHA256SUMS), keyed by ``relpath``.
SHA256: dict[str, str] = {
    "affinities/all_affinities.pkl":
        "6b2d42a7281fe4eac2f5f32499f12c3da63292d4a5d8f04bf1b8b97d9687260c",
    "affinities/all_affinities_16k.pkl":
        "33e57697e6f83c27a3a8cc4c80bdfa2f803ebd8d931710bdde52172ddf493f44",
    "affinities/all_affinities_1k.pkl":
        "e797c4715f2523cedaa02a801b2e8197ab1347cb5f490d98731ba719e1b6d575",
    "winrates/wins_vs_pixels.pkl":
        "2314c14af45777437412632c9c409c15131e152abd108caaec4b820b23ab9f03",
    "winrates/wins_vs_pixels_16k.pkl":
        "34a3c471d8547ddd509cedb8d2d60f90e9b881c70f23cc91c4fc85e4e3852d75",
    "winrates/wins_vs_pixels_1k.pkl":
        "d791aea296f4209b6beaf96f9c73ca1797d7f69e8bb1efc60061173aa0d19034",
    "winrates/wins_vs_task.pkl":
        "74123af8a3f228d5ab1a43f7d73b05e3adbc1e393ead8f3fe550e3bcffd0d016",
    "winrates/wins_vs_task_16k.pkl":
        "8cacb05abbf70a365da22b9b069143d404fda19631eaab4d14ac3b0508b40ac3",
    "winrates/wins_vs_task_1k.pkl":
        "71f1e96586da8af5a54f889b4d7296cdf1013d58deeb6cac1a83bad9fc5244cd",
}

#: File kinds: affinity, win rate against pixels-only, win rate against the task-specific network.
KINDS: tuple[str, ...] = ("affinity", "wins_vs_pixels", "wins_vs_task")
#: File variants: unsuffixed ("base"), 16k and 1k transfer-training images.
VARIANTS: tuple[str, ...] = ("base", "16k", "1k")

#: Sources / targets in the pickles that are not Taskonomy tasks (kept under these labels):
#: ``self`` = fully supervised task-specific network, ``random`` = random-projection baseline,
#: ``pixels`` = image-only baseline (win-rate base files only), ``class_selected`` = 100-class
#: object classification (no taskbank model; a target only in the base files).
NON_TASK_LABELS: tuple[str, ...] = ("self", "random", "pixels", "class_selected")

_SCALAR_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


def relpath(kind: str = "affinity", variant: str = "16k") -> str:
    """Path of one ground-truth file relative to ``results/`` (e.g. ``affinities/all_affinities_16k.pkl``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown ground-truth kind {kind!r}; valid: {', '.join(KINDS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown ground-truth variant {variant!r}; valid: {', '.join(VARIANTS)}")
    suffix = "" if variant == "base" else f"_{variant}"
    if kind == "affinity":
        return f"affinities/all_affinities{suffix}.pkl"
    return f"winrates/{kind}{suffix}.pkl"


def verify_sha256(path: Path, expected: str) -> Path:
    """Return ``path`` if its SHA-256 equals ``expected``, else raise :class:`ChecksumError`.

    ``ChecksumError`` is :class:`tasksim.download.ChecksumError`; its message names the file, the
    expected and the actual hash.
    """
    path = Path(path)
    actual = sha256_file(path)
    if actual.lower() != expected.lower():
        raise ChecksumError(str(path), expected.lower(), actual)
    return path


def resolve_source(source: str | Path, rel: str) -> str:
    """URL or local path of ``rel`` (a :func:`relpath`) under ``source``.

    ``source`` is an ``http(s)://`` URL base (the folder ``results/``, e.g. :data:`DEFAULT_SOURCE`),
    a ``file://`` URL of a local mirror directory, or a local mirror directory (laid out like
    ``results/``, e.g. ``../shared/taskonomy``). A trailing ``/`` is optional.
    """
    s = str(source)
    if is_url(s) and not s.startswith("file:"):
        return s.rstrip("/") + "/" + rel
    local = Path(resolve(s))  # file:// URL -> path; a plain path stays
    return str(local / rel)


def obtain(source: str | Path = DEFAULT_SOURCE, kind: str = "affinity", variant: str = "16k",
           cache_dir: Path | None = None) -> Path:
    """Local, SHA-256-verified path of one ground-truth file.

    A local mirror (directory or ``file://``) is verified in place, nothing is copied. A remote
    source is downloaded with :func:`tasksim.download.fetch` to ``cache_dir / relpath`` (reused
    when already present and valid). Raises :class:`ChecksumError` on a mismatch.
    """
    rel = relpath(kind, variant)
    expected = SHA256[rel]
    where = resolve_source(source, rel)
    if is_url(where):
        if cache_dir is None:
            raise ValueError("a remote ground-truth source needs a cache_dir to download into")
        dest = Path(cache_dir) / rel
        if dest.exists():
            try:
                return verify_sha256(dest, expected)
            except ChecksumError:
                dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        fetch(where, dest, expected)
        return verify_sha256(dest, expected)
    return verify_sha256(Path(where), expected)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only numpy scalar reconstruction and ``numpy.dtype``.

    Every other global (``os.system``, ``builtins.eval``, ``numpy`` array reconstruction, ...)
    raises :class:`pickle.UnpicklingError` naming the refused ``module.name``, before anything is
    called.
    """

    def find_class(self, module: str, name: str):  # noqa: D102 (pickle API)
        if name == "scalar" and module in _SCALAR_MODULES:
            try:
                from numpy._core.multiarray import scalar  # numpy >= 2
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core.multiarray import scalar
            return scalar
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(
            f"refused global {module}.{name}: the Taskonomy ground-truth unpickler admits only "
            f"numpy scalars and numpy.dtype")


def load_pickle(path: Path, expected_sha256: str) -> dict[str, float]:
    """Verify the SHA-256 of ``path``, then unpickle it with :class:`RestrictedUnpickler`.

    The bytes are read once, hashed, and only the verified bytes are unpickled. Returns a plain
    ``dict[str, float]``; anything else than a dict of str -> real number is refused.
    """
    path = Path(path)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ChecksumError(str(path), expected_sha256.lower(), actual)
    obj = RestrictedUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(f"{path}: expected a dict, got {type(obj).__name__}")
    out: dict[str, float] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, (float, int, np.floating, np.integer)):
            raise pickle.UnpicklingError(f"{path}: unexpected entry {k!r}: {type(v).__name__}")
        out[k] = float(v)
    return out


def label(spelling: str) -> str:
    """Canonical label of a pickle spelling: a task's visualpriors name, or a non-task label."""
    if spelling in NON_TASK_LABELS:
        return spelling
    return _tasks.canonical(spelling)


def pickle_label(name: str) -> str:
    """Inverse of :func:`label`: the spelling used in the pickles."""
    if name in NON_TASK_LABELS:
        return name
    return _tasks.pickle_name(name)


def _order(labels: set[str]) -> list[str]:
    """Tasks in registry order, then non-task labels in :data:`NON_TASK_LABELS` order."""
    tasks = [t for t in _tasks.TASKS if t in labels]
    rest = [x for x in NON_TASK_LABELS if x in labels]
    return tasks + rest


def first_order_matrix(raw: dict[str, float]) -> pd.DataFrame:
    """Source x target DataFrame of the first-order transfers (keys ``a__b``) of one pickle.

    Index = sources, columns = targets, both canonical labels (:func:`label`); the non-task
    sources ``self`` / ``random`` / ``pixels`` / ``class_selected`` are extra rows (and
    ``class_selected`` an extra column in the base files). Entry ``[X, X]`` is the readout on X's
    own frozen encoder (key ``X__X``), distinct from ``["self", X]``. Missing pairs are NaN.
    Higher-order keys are skipped (:func:`higher_order_table` keeps them).
    """
    cells: dict[tuple[str, str], float] = {}
    for key, value in raw.items():
        parts = key.split("__")
        if len(parts) != 2:
            continue
        s, t = label(parts[0]), label(parts[1])
        if (s, t) in cells:
            raise ValueError(f"duplicate first-order transfer {s} -> {t} (key {key!r})")
        cells[(s, t)] = value
    rows = _order({s for s, _ in cells})
    cols = _order({t for _, t in cells})
    m = pd.DataFrame(np.nan, index=pd.Index(rows, name="source"),
                     columns=pd.Index(cols, name="target"))
    for (s, t), v in cells.items():
        m.at[s, t] = v
    return m


def higher_order_table(raw: dict[str, float]) -> pd.DataFrame:
    """All transfers of one pickle as a long table: columns ``sources`` (tuple), ``target``, ``order``, ``value``."""
    recs = []
    for key, value in raw.items():
        parts = [label(p) for p in key.split("__")]
        recs.append({"sources": tuple(parts[:-1]), "target": parts[-1],
                     "order": len(parts) - 1, "value": value})
    return pd.DataFrame.from_records(recs, columns=["sources", "target", "order", "value"])


def load_matrix(source: str | Path = DEFAULT_SOURCE, kind: str = "affinity",
                variant: str = "16k", cache_dir: Path | None = None) -> pd.DataFrame:
    """:func:`obtain` + :func:`load_pickle` + :func:`first_order_matrix` of one file.

    ``load_matrix("../shared/taskonomy", "affinity", "16k")`` is the attribution-paper ground
    truth; ``("affinity", "base")`` and ``("wins_vs_pixels", "16k")`` are the DDS ones.
    """
    path = obtain(source, kind, variant, cache_dir)
    return first_order_matrix(load_pickle(path, SHA256[relpath(kind, variant)]))


#: Leaves of the Taskonomy reference tree: the 20 paper tasks (all are sources in every file).
TREE_TASKS: tuple[str, ...] = _tasks.PAPER_TASKS
#: Targets forming each task's transfer-out feature vector: the 18 paper tasks that are targets.
TREE_TARGETS: tuple[str, ...] = tuple(t for t in _tasks.PAPER_TASKS
                                      if t not in ("colorization", "inpainting"))


def taskonomy_tree_features(affinity: pd.DataFrame, tasks: tuple[str, ...] = TREE_TASKS,
                            targets: tuple[str, ...] = TREE_TARGETS,
                            normalise: str = "rank") -> pd.DataFrame:
    """Transfer-out feature vectors: row X = first-order affinities of source X to ``targets``.

    The entry X -> X (readout on X's own encoder) is kept: it is part of X's transfer-out
    pattern. ``normalise="rank"`` (default) replaces each target column by the ranks of its
    sources divided by ``len(tasks)`` (AHP affinities of different targets have very different
    scales, and only the order of sources per target is comparable across targets);
    ``"column_max"`` divides each column by its maximum over ``tasks``; ``"none"`` keeps raw
    affinities. Targets missing from the matrix (e.g. class_scene in the base file) are
    dropped.
    """
    targets = tuple(t for t in targets if t in affinity.columns)
    f = affinity.loc[list(tasks), list(targets)].astype(float)
    if f.isna().any().any():
        raise ValueError("affinity matrix has missing first-order transfers among the tree tasks")
    if normalise == "column_max":
        f = f / f.max(axis=0)
    elif normalise == "rank":
        f = f.rank(axis=0) / len(tasks)
    elif normalise != "none":
        raise ValueError(f"unknown normalise {normalise!r}; valid: column_max, rank, none")
    return f


def taskonomy_tree(affinity: pd.DataFrame, tasks: tuple[str, ...] = TREE_TASKS,
                   targets: tuple[str, ...] = TREE_TARGETS, method: str = "average",
                   normalise: str = "rank") -> tuple[np.ndarray, list[str]]:
    """Taskonomy's own task tree: agglomerative clustering of tasks by transfer-out pattern.

    Exact choices (defaults): ground truth ``all_affinities_16k.pkl`` (pass
    ``load_matrix(..., "affinity", "16k")``; it is the only file with all 20 paper tasks as
    sources and class_scene as a target besides 1k); leaves = the 20 paper tasks
    (:data:`TREE_TASKS`); feature of task X = its first-order affinities as a source to the 18
    paper targets (:data:`TREE_TARGETS`, X -> X included), each target column replaced by the
    ranks of the 20 sources divided by 20 (:func:`taskonomy_tree_features`); Euclidean distance
    between feature vectors; **average** linkage (UPGMA); then optimal leaf ordering.

    Why ranks: with raw or column-max-scaled affinities the own-encoder entry X -> X dominates a
    few rows (normal, denoising, edge_texture end up as singletons at 4 clusters). With ranks,
    the 4-cluster cut of all_affinities_16k is exactly the 2D / 3D / low-dimensional-geometric /
    semantic grouping of the RSA and attribution papers, under average, complete and ward
    linkage alike (tests/test_groundtruth.py checks the default).

    Returns ``(Z, labels)``: a scipy linkage matrix and the leaf labels in row order.
    """
    f = taskonomy_tree_features(affinity, tasks, targets, normalise)
    d = pdist(f.to_numpy(), metric="euclidean")
    z = linkage(d, method=method)
    z = optimal_leaf_ordering(z, d)
    return z, list(f.index)
