"""Label kinds: what one image's label of a task is, declared once per task.

=====================  =====================================  ===============================
kind                   array of N images                      extra
=====================  =====================================  ===============================
``class``              int64 ``[N]``                          ``n_classes``
``dense_class``        int64 ``[N, H, W]``                    ``n_classes``
``dense_regression``   float32 ``[N, H, W, K]``               ``n_channels`` (K)
``vector_regression``  float32 ``[N, K]``                     ``n_channels`` (K)
``dense_instance``     int64 ``[N, H, W]``                    none: ids name segments within
                                                              one image only
=====================  =====================================  ===============================

:data:`TASK_LABEL_KINDS` is the only place a task's kind is declared, keyed by canonical task
name (:mod:`tasksim.tasks`); Taskonomy and Mini-Taskonomy share it, since they share the names.
The multi-image tasks (egomotion, camera pose, point matching, jigsaw) have no single-image label
and so no kind. Channel and class counts depend on where the labels come from (1000 ImageNet
classes for Taskonomy's ``class_object``, 4 for Mini-Taskonomy's) and travel with the labels
(:class:`TaskLabels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from tasksim.tasks import TASKS, canonical, is_known

LabelKind = Literal["class", "dense_class", "dense_regression", "vector_regression", "dense_instance"]
LABEL_KINDS: tuple[LabelKind, ...] = get_args(LabelKind)
#: Kinds whose labels are classes (``n_classes`` is recorded).
CLASS_KINDS: frozenset[str] = frozenset({"class", "dense_class"})
#: Kinds whose labels are float channels (``n_channels`` is recorded).
REGRESSION_KINDS: frozenset[str] = frozenset({"dense_regression", "vector_regression"})
#: Kinds with one label per pixel.
DENSE_KINDS: frozenset[str] = frozenset({"dense_class", "dense_regression", "dense_instance"})

TASK_LABEL_KINDS: dict[str, LabelKind] = {
    "autoencoding": "dense_regression",  # the image itself
    "colorization": "dense_regression",  # the image's colours
    "curvature": "dense_regression",  # two principal curvatures
    "denoising": "dense_regression",  # the clean image
    "edge_texture": "dense_regression",
    "edge_occlusion": "dense_regression",
    "keypoints2d": "dense_regression",
    "keypoints3d": "dense_regression",
    "reshading": "dense_regression",
    "depth_zbuffer": "dense_regression",
    "depth_euclidean": "dense_regression",
    "normal": "dense_regression",
    "room_layout": "vector_regression",
    "segment_unsup25d": "dense_instance",
    "segment_unsup2d": "dense_instance",
    "vanishing_point": "vector_regression",
    "segment_semantic": "dense_class",
    "class_object": "class",
    "class_scene": "class",
    "inpainting": "dense_regression",  # the whole image
}


class TargetError(ValueError):
    """Target labels that cannot be built or used; the message names the file, URL or task."""


class NoLabelKindError(TargetError):
    """A task without single-image labels (a multi-image task) or an unknown task."""


class LabelFileError(TargetError):
    """One label file is missing, unreadable, corrupt or of the wrong shape; the message names it."""


def label_kind(task: str) -> LabelKind:
    """Declared label kind of a task (any spelling of :mod:`tasksim.tasks`).

    Raises :class:`NoLabelKindError` for multi-image tasks and unknown names.
    """
    if not is_known(task):
        raise NoLabelKindError(f"unknown task {task!r}: no label kind is declared for it")
    name = canonical(task)
    if name not in TASK_LABEL_KINDS:
        raise NoLabelKindError(f"task {name!r} has no single-image labels (a multi-image task): "
                               f"no label kind")
    return TASK_LABEL_KINDS[name]


def has_label_kind(task: str) -> bool:
    """Whether a label kind is declared for ``task``."""
    return is_known(task) and canonical(task) in TASK_LABEL_KINDS


def labelled_tasks() -> tuple[str, ...]:
    """Canonical names of every task with a label kind, in the order of the task table."""
    return tuple(t for t in TASKS if t in TASK_LABEL_KINDS)


def check_kind(kind: str) -> LabelKind:
    """``kind`` if it is one of :data:`LABEL_KINDS`, else a :class:`TargetError`."""
    if kind not in LABEL_KINDS:
        raise TargetError(f"label kind must be one of {', '.join(LABEL_KINDS)}; got {kind!r}")
    return kind  # type: ignore[return-value]


def expected_ndim(kind: LabelKind) -> int:
    """Number of axes of the labels of N images (image axis included)."""
    return {"class": 1, "dense_class": 3, "dense_regression": 4, "vector_regression": 2,
            "dense_instance": 3}[kind]


def as_label_array(values: np.ndarray, kind: LabelKind) -> np.ndarray:
    """Labels in their kind's dtype: int64 for class and instance kinds, float32 for regression.

    Integer kinds refuse non-integral values; float kinds refuse non-numeric arrays.
    """
    x = np.asarray(values)
    if kind in REGRESSION_KINDS:
        if x.dtype.kind not in "biuf":
            raise TargetError(f"{kind} labels must be numeric, got dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or not np.array_equal(x, np.round(x)):
            raise TargetError(f"{kind} labels must be integers, got non-integral float values")
    elif x.dtype.kind not in "biu":
        raise TargetError(f"{kind} labels must be integers, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.int64)


def check_labels(values: np.ndarray, kind: LabelKind, *, n_images: int | None = None,
                 n_classes: int | None = None, n_channels: int | None = None, where: str = "") -> None:
    """Raise :class:`TargetError` (prefixed with ``where``) unless ``values`` fit ``kind``.

    Checks the number of axes, the image count, the channel count of regression kinds and that
    class labels lie in ``0 .. n_classes - 1`` (instance ids must be non-negative).
    """
    prefix = f"{where}: " if where else ""
    x = np.asarray(values)
    if x.ndim != expected_ndim(kind):
        raise TargetError(f"{prefix}{kind} labels must have {expected_ndim(kind)} axes "
                          f"(images first), got shape {x.shape}")
    if n_images is not None and x.shape[0] != n_images:
        raise TargetError(f"{prefix}{x.shape[0]} labels for {n_images} probe images")
    if kind in REGRESSION_KINDS:
        if n_channels is not None and x.shape[-1] != n_channels:
            raise TargetError(f"{prefix}{kind} labels have {x.shape[-1]} channels, expected {n_channels}")
        return
    if x.size and x.min() < 0:
        raise TargetError(f"{prefix}{kind} labels must be non-negative, smallest is {x.min()}")
    if kind in CLASS_KINDS and x.size and n_classes is not None and x.max() >= n_classes:
        raise TargetError(f"{prefix}class label {x.max()} is out of range for {n_classes} classes")


@dataclass(frozen=True, eq=False)
class TaskLabels:
    """The labels of one task for every probe image, in probe order, with their provenance.

    ``values`` follows the layout of :data:`LABEL_KINDS` (checked on construction, and converted
    to the kind's dtype). ``sources`` and ``sha256`` (optional, one per image) say which file each
    label was decoded from and the SHA-256 of its bytes; ``class_names`` (optional) names classes
    ``0 .. n_classes - 1``; ``source`` describes where the whole set came from.
    """

    task: str
    kind: LabelKind
    values: np.ndarray
    n_classes: int | None = None
    n_channels: int | None = None
    source: str = ""
    sources: tuple[str, ...] | None = None
    sha256: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        values = as_label_array(self.values, self.kind)
        n_channels = self.n_channels
        if self.kind in REGRESSION_KINDS and n_channels is None and values.ndim == expected_ndim(self.kind):
            n_channels = int(values.shape[-1])
        where = f"labels of task {self.task}"
        if self.kind in CLASS_KINDS and self.n_classes is None:
            raise TargetError(f"{where}: n_classes is required for {self.kind} labels")
        check_labels(values, self.kind, n_classes=self.n_classes, n_channels=n_channels, where=where)
        n = values.shape[0]
        for name in ("sources", "sha256"):
            seq = getattr(self, name)
            if seq is not None and len(seq) != n:
                raise TargetError(f"{where}: {len(seq)} {name} for {n} labels")
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise TargetError(f"{where}: {len(self.class_names)} class names for {self.n_classes} classes")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "n_channels", n_channels if self.kind in REGRESSION_KINDS else None)
        if self.kind not in CLASS_KINDS:
            object.__setattr__(self, "n_classes", None)

    @property
    def n_images(self) -> int:
        """Number of labelled images."""
        return int(self.values.shape[0])
