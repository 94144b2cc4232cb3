"""Target files: the labels of one target set in one HDF5 file (layout: docs/data-layout.md).

A target file repeats the probe ids and the probe set's content hash (``probe_sha256``), as every
HDF5 file of the project does. It is written atomically (:func:`tasksim.io.atomic_path`);
:func:`read_targets` compares the hash with an activation file's before labels and features can
be paired, and refuses a mismatch naming both files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tasksim.io import atomic_path, open_h5, read_str, str_dataset
from tasksim.probe import probe_info
from tasksim.targets.kinds import CLASS_KINDS, REGRESSION_KINDS, LabelKind, TargetError, TaskLabels, check_kind
from tasksim.tasks import canonical, is_known

FORMAT = "tasksim-targets/1"


class ProbeMismatchError(TargetError):
    """Two files were made from different probe sets; the message names both and their hashes."""


def task_key(task: str) -> str:
    """Name of a task inside a target file: canonical for Taskonomy tasks, else as given."""
    return canonical(task) if is_known(task) else task


def storage_dtype(values: np.ndarray) -> np.dtype:
    """On-disk dtype: float32 for floats, the smallest unsigned type that holds integer labels."""
    if values.dtype.kind == "f":
        return np.dtype(np.float32)
    top = int(values.max()) if values.size else 0
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _as_list(labels: Mapping[str, TaskLabels] | Iterable[TaskLabels]) -> list[TaskLabels]:
    return list(labels.values()) if isinstance(labels, Mapping) else list(labels)


def write_targets(path: str | os.PathLike[str], labels: Mapping[str, TaskLabels] | Iterable[TaskLabels],
                  probe_path: str | os.PathLike[str], locking: bool | None = None) -> Path:
    """Write the labels of one or more tasks for the probe set ``probe_path`` to ``path`` (atomically).

    Every task must have one label per probe image; two entries for one task are refused.
    """
    items = _as_list(labels)
    info = probe_info(probe_path, locking)
    ids, probe_sha = list(info["ids"]), str(info["content_sha256"])
    keys = [task_key(t.task) for t in items]
    if len(set(keys)) != len(keys):
        raise TargetError(f"target file {os.fspath(path)}: a task is given twice ({keys})")
    for item in items:
        if item.n_images != len(ids):
            raise TargetError(f"task {item.task}: {item.n_images} labels for the {len(ids)} images of probe "
                              f"file {os.fspath(probe_path)}")
    with atomic_path(path, suffix=".h5") as tmp:
        with open_h5(tmp, "w", locking) as f:
            str_dataset(f, "ids", ids)
            f.attrs.update({"format": FORMAT, "probe_sha256": probe_sha, "n_images": len(ids),
                            "tasks": json.dumps(keys)})
            for key, item in zip(keys, items, strict=True):
                _write_task(f, key, item)
    return Path(path)


def _write_task(f: Any, key: str, item: TaskLabels) -> None:
    values = item.values
    chunks = (1, *values.shape[1:]) if values.ndim > 1 else None
    ds = f.create_dataset(f"labels/{key}", data=values.astype(storage_dtype(values)), chunks=chunks,
                          compression="gzip" if values.ndim > 1 else None)
    ds.attrs["label_kind"] = item.kind
    ds.attrs["source"] = item.source
    if item.kind in CLASS_KINDS:
        ds.attrs["n_classes"] = int(item.n_classes or 0)
    if item.kind in REGRESSION_KINDS:
        ds.attrs["n_channels"] = int(item.n_channels or 0)
    for group, seq in (("sources", item.sources), ("sha256", item.sha256), ("class_names", item.class_names)):
        if seq is not None:
            str_dataset(f.require_group(group), key, list(seq))


def targets_info(path: str | os.PathLike[str], locking: bool | None = None) -> dict[str, Any]:
    """Ids, ``probe_sha256``, ``n_images`` and ``{task: label kind}`` of a target file."""
    with open_h5(path, "r", locking) as f:
        if f.attrs.get("format") != FORMAT:
            raise TargetError(f"{os.fspath(path)} is not a target file (format {f.attrs.get('format')!r})")
        kinds = {k: str(f["labels"][k].attrs["label_kind"]) for k in json.loads(f.attrs["tasks"])}
        return {"ids": read_str(f["ids"]), "probe_sha256": str(f.attrs["probe_sha256"]),
                "n_images": int(f.attrs["n_images"]), "tasks": kinds}


def probe_hash_of(path: str | os.PathLike[str], locking: bool | None = None) -> tuple[str, list[str]]:
    """Probe hash and ids of any project HDF5 file (``probe_sha256``; a probe file's ``content_sha256``)."""
    with open_h5(path, "r", locking) as f:
        sha = f.attrs.get("probe_sha256", f.attrs.get("content_sha256"))
        if sha is None:
            raise TargetError(f"{os.fspath(path)} records no probe set (no probe_sha256 attribute)")
        return str(sha), read_str(f["ids"]) if "ids" in f else []


def check_same_probe(targets_path: str | os.PathLike[str], other_path: str | os.PathLike[str],
                     locking: bool | None = None) -> str:
    """The shared probe hash of a target file and an activation (or any project) file.

    Raises :class:`ProbeMismatchError` naming both files when hashes or ids differ.
    """
    mine, my_ids = probe_hash_of(targets_path, locking)
    theirs, their_ids = probe_hash_of(other_path, locking)
    if mine != theirs:
        raise ProbeMismatchError(f"target file {os.fspath(targets_path)} (probe_sha256 {mine}) and "
                                 f"{os.fspath(other_path)} (probe_sha256 {theirs}) were made from different "
                                 "probe sets: their rows are not the same images")
    if their_ids and their_ids != my_ids:
        raise ProbeMismatchError(f"target file {os.fspath(targets_path)} and {os.fspath(other_path)} share "
                                 "the probe hash but list different ids")
    return mine


def read_task_labels(path: str | os.PathLike[str], task: str, *,
                     activations: str | os.PathLike[str] | None = None,
                     locking: bool | None = None) -> TaskLabels:
    """One task of a target file with its provenance; with ``activations``, the probe sets must agree."""
    if activations is not None:
        check_same_probe(path, activations, locking)
    key = task_key(task)
    with open_h5(path, "r", locking) as f:
        if key not in f.get("labels", {}):
            have = ", ".join(json.loads(f.attrs.get("tasks", "[]")))
            raise TargetError(f"target file {os.fspath(path)} has no labels for task {key!r} (it has: {have})")
        ds = f["labels"][key]
        kind: LabelKind = check_kind(str(ds.attrs["label_kind"]))
        extra = {g: tuple(read_str(f[g][key])) if g in f and key in f[g] else None
                 for g in ("sources", "sha256", "class_names")}
        return TaskLabels(key, kind, ds[()], n_classes=_int_attr(ds, "n_classes"),
                          n_channels=_int_attr(ds, "n_channels"), source=str(ds.attrs.get("source", "")),
                          **extra)


def _int_attr(ds: Any, name: str) -> int | None:
    return int(ds.attrs[name]) if name in ds.attrs else None


def read_targets(path: str | os.PathLike[str], task: str, *, activations: str | os.PathLike[str] | None = None,
                 locking: bool | None = None) -> tuple[np.ndarray, LabelKind]:
    """Labels ``[N, ...]`` (probe order) and label kind of ``task`` in a target file.

    With ``activations`` (an activation file, or any file recording ``probe_sha256``), refuses
    with :class:`ProbeMismatchError` unless both were made from the same probe set.
    """
    item = read_task_labels(path, task, activations=activations, locking=locking)
    return item.values, item.kind


def recorded_sha256(path: str | os.PathLike[str], locking: bool | None = None) -> dict[str, str]:
    """``{label file URL: SHA-256}`` recorded in a target file, to verify a rebuild's downloads."""
    out: dict[str, str] = {}
    with open_h5(path, "r", locking) as f:
        for key in f.get("sha256", {}):
            out.update(zip(read_str(f["sources"][key]), read_str(f["sha256"][key]), strict=True))
    return out
