"""Mini-Taskonomy labels of the probe scenes: the targets the mini encoders are trained on.

The offline demo freezes generated scenes as its probe set (``probe.source: generated``): the
probe file's ids are ``scene_<index>`` and its ``source`` attribute ``generated:seed=<seed>``, and
row ``i`` is scene ``index`` of that seed rendered at the probe resolution
(:func:`tasksim.scenes.render_rgb`). The same scenes are rendered again here with their labels,
their images are checked byte for byte against the probe file's, and every task's label is its
training target (:func:`tasksim.minitaskonomy.data.raw_target`: dense labels at half the image
side) in the layout of its label kind (:mod:`tasksim.targets.kinds`; dense regression maps move
their channels last).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import numpy as np

from tasksim.io import open_h5, read_str
from tasksim.minitaskonomy.data import MINI_TASKS, TASK_SPECS, TaskSpec, raw_target
from tasksim.scenes import render_batch
from tasksim.targets.kinds import LabelKind, TargetError, TaskLabels, label_kind

_SCENE_ID = re.compile(r"^scene_(\d+)$")
_GENERATED = re.compile(r"^generated:seed=(-?\d+)$")


def scene_indices(ids: Sequence[str]) -> list[int]:
    """Scene index of each probe id ``scene_000123``; any other id is refused."""
    out: list[int] = []
    for i in ids:
        m = _SCENE_ID.match(i)
        if m is None:
            raise TargetError(f"probe id {i!r} is not a generated scene id (scene_<index>): "
                              "Mini-Taskonomy labels exist only for generated probe sets")
        out.append(int(m.group(1)))
    return out


def generated_seed(source: str) -> int:
    """Seed of a generated probe set from its ``source`` attribute ``generated:seed=<seed>``."""
    m = _GENERATED.match(source)
    if m is None:
        raise TargetError(f"probe source {source!r} is not a generated scene set "
                          "(generated:seed=<seed>): Mini-Taskonomy labels need probe.source: generated")
    return int(m.group(1))


def render_scenes(indices: Sequence[int], size: int, seed: int) -> dict[str, np.ndarray]:
    """Scenes ``indices`` of ``seed`` with labels, stacked in the given order (as ``render_batch``)."""
    parts = [render_batch(1, size, seed, start=i) for i in indices]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def spec_kind(spec: TaskSpec) -> LabelKind:
    """The label kind a Mini-Taskonomy task's training setup implies (output shape and loss)."""
    if spec.kind == "global":
        return "class" if spec.loss == "ce" else "vector_regression"
    return {"ce": "dense_class", "metric": "dense_instance"}.get(spec.loss, "dense_regression")  # type: ignore[return-value]


def kind_layout(target: np.ndarray, kind: LabelKind) -> np.ndarray:
    """A :func:`raw_target` array in its kind's layout (dense regression: ``[N, C, H, W]`` -> ``[N, H, W, C]``)."""
    return np.moveaxis(target, 1, -1) if kind == "dense_regression" else target


def mini_task_labels(task: str, data: dict[str, np.ndarray], source: str = "") -> TaskLabels:
    """Labels of one Mini-Taskonomy task for rendered scenes ``data`` (from :func:`render_scenes`)."""
    if task not in TASK_SPECS:
        raise TargetError(f"{task!r} is not a Mini-Taskonomy task ({', '.join(MINI_TASKS)})")
    spec, kind = TASK_SPECS[task], label_kind(task)
    if spec_kind(spec) != kind:
        raise TargetError(f"Mini-Taskonomy task {task} is trained as {spec_kind(spec)} but its "
                          f"declared label kind is {kind}")
    values = kind_layout(raw_target(task, data), kind)
    n_classes = spec.out if kind in ("class", "dense_class") else None
    return TaskLabels(task, kind, values, n_classes=n_classes, source=source)


def probe_scenes(probe_path: str | os.PathLike[str], locking: bool | None = None
                 ) -> tuple[list[str], int, int, np.ndarray]:
    """Ids, seed, resolution and images of a generated probe file."""
    with open_h5(probe_path, "r", locking) as f:
        ids = read_str(f["ids"])
        seed = generated_seed(str(f.attrs["source"]))
        return ids, seed, int(f.attrs["resolution"]), f["images"][()]


def minitaskonomy_targets(probe_path: str | os.PathLike[str], tasks: Iterable[str] | None = None,
                          locking: bool | None = None) -> dict[str, TaskLabels]:
    """Labels of every Mini-Taskonomy task (default all 17) for exactly the probe images, in probe order.

    Renders the probe's scenes with labels and refuses (naming the probe file and the scene)
    when a rendered image differs from the stored one, i.e. when the labels would not be those
    of the probe images.
    """
    ids, seed, size, images = probe_scenes(probe_path, locking)
    data = render_scenes(scene_indices(ids), size, seed)
    for row, scene in enumerate(ids):
        if not np.array_equal(data["rgb"][row], images[row]):
            raise TargetError(f"probe file {os.fspath(probe_path)}: image {row} ({scene}) is not the "
                              f"scene rendered from seed {seed} at {size} px; its labels would not match")
    source = f"minitaskonomy:generated:seed={seed}"
    return {t: mini_task_labels(t, data, source) for t in (MINI_TASKS if tasks is None else list(tasks))}
