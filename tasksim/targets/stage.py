"""The targets stage's steps (path in, path out), called by its rule script: one target file of
the probe set from the configured label source (:func:`target_file`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasksim.io import write_json
from tasksim.targets.kinds import TaskLabels
from tasksim.targets.minitaskonomy import minitaskonomy_targets
from tasksim.targets.store import write_targets

#: File of the label cache that records the SHA-256 of every label file fetched into it.
CACHE_MANIFEST = "sha256.json"

log = logging.getLogger(__name__)


def minitaskonomy_target_file(probe: str | os.PathLike[str], out: str | os.PathLike[str],
                              tasks: Sequence[str], locking: bool | None = None) -> None:
    """The rendered Mini-Taskonomy labels of every probe scene for ``tasks``, as one target file."""
    labels = minitaskonomy_targets(probe, tasks, locking)
    for t, item in labels.items():
        log.info("%s: %s labels %s", t, item.kind, tuple(item.values.shape))
    write_targets(out, labels, probe, locking)


def read_cache_manifest(cache_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``{url: sha256}`` of the label files fetched into ``cache_dir`` by earlier runs (empty when
    there is no manifest yet). A manifest that is not such a JSON object is refused, naming it."""
    path = Path(cache_dir) / CACHE_MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"label cache manifest {path}: not readable JSON ({err}); delete it to "
                         f"fetch the labels again") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"label cache manifest {path}: expected an object of url -> sha256; delete "
                         f"it to fetch the labels again")
    return data


def taskonomy_target_file(probe: str | os.PathLike[str], url_list: str | os.PathLike[str],
                          out: str | os.PathLike[str], tasks: Sequence[str],
                          cache_dir: str | os.PathLike[str], size: int | None,
                          locking: bool | None = None) -> None:
    """The labels of ``tasks`` for the probe views, downloaded from the sample building the probe
    images came from (``url_list``: the probe set's list file), as one target file.

    Label files are cached in ``cache_dir``; its manifest records the SHA-256 of each, so a
    rerun reuses only files that still have their recorded bytes (others are fetched again and
    verified) and a fetched file that differs from its recorded hash fails naming it."""
    from tasksim.targets.taskonomy import taskonomy_targets

    known = read_cache_manifest(cache_dir)
    labels = taskonomy_targets(probe, url_list, tasks, cache_dir, size=size, expected=known,
                               locking=locking)
    for item in labels.values():
        known.update(zip(item.sources, item.sha256, strict=True))
    write_json(Path(cache_dir) / CACHE_MANIFEST, known)
    _log_labels(labels)
    write_targets(out, labels, probe, locking)


def user_target_file(probe: str | os.PathLike[str], out: str | os.PathLike[str], task: str, kind: str,
                     *, class_csv: str | None, map_dir: str | None, image_dir: str | None,
                     size: int | None, locking: bool | None = None) -> None:
    """The user's one target task for the probe images of a folder: classes from ``class_csv``
    or dense labels from the label maps of ``map_dir`` (:mod:`tasksim.targets.user`)."""
    from tasksim.probe import probe_info
    from tasksim.targets.user import class_labels_from_csv, label_maps_from_folder

    ids = list(probe_info(probe, locking)["ids"])
    known = _folder_images(image_dir)
    if kind == "class":
        if not class_csv:
            raise ValueError("targets.user.class_csv is needed for kind class")
        item = class_labels_from_csv(class_csv, ids, task=task, known=known)
    else:
        if not map_dir:
            raise ValueError(f"targets.user.map_dir is needed for kind {kind}")
        item = label_maps_from_folder(map_dir, ids, kind, image_dir=image_dir, size=size, task=task,
                                      known=known)
    _log_labels({task: item})
    write_targets(out, [item], probe, locking)


def _folder_images(image_dir: str | None) -> list[str] | None:
    """Every image of the probe folder (its ids' form: paths relative to it), or None."""
    if not image_dir:
        return None
    from tasksim.probe import folder_images

    root = Path(image_dir)
    return [p.relative_to(root).as_posix() for p in folder_images(root)]


def _log_labels(labels: Mapping[str, TaskLabels]) -> None:
    for t, item in labels.items():
        log.info("%s: %s labels %s (%s)", t, item.kind, tuple(item.values.shape), item.source)


def target_file(source: str, probe: str | os.PathLike[str], out: str | os.PathLike[str],
                tasks: Sequence[str], options: Mapping[str, Any], *, url_list: str | None = None,
                cache_dir: str | None = None, image_dir: str | None = None,
                locking: bool | None = None) -> None:
    """The target file of the probe set from label source ``source`` (``targets.source``
    resolved): ``minitaskonomy``, ``taskonomy`` or ``user``; ``options`` is the ``targets``
    config section (``size``, ``user``)."""
    if source == "minitaskonomy":
        minitaskonomy_target_file(probe, out, tasks, locking)
    elif source == "taskonomy":
        if not url_list or not cache_dir:
            raise ValueError("Taskonomy labels need the probe set's URL list and a cache folder")
        taskonomy_target_file(probe, url_list, out, tasks, cache_dir, options["size"], locking)
    elif source == "user":
        user = options["user"]
        user_target_file(probe, out, user["task"], user["kind"], class_csv=user["class_csv"],
                         map_dir=user["map_dir"], image_dir=image_dir, size=options["size"], locking=locking)
    else:
        raise ValueError(f"targets.source {source!r}: no labels to write (known: minitaskonomy, "
                         f"taskonomy, user)")
