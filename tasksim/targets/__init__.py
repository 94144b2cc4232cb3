"""Target sets: the probe images plus the labels of one target task.

* :mod:`~tasksim.targets.kinds`: the label kinds and the one table declaring each task's kind;
  :class:`TaskLabels`, the labels of one task in probe order with their provenance.
* :mod:`~tasksim.targets.minitaskonomy`: Mini-Taskonomy labels of generated probe scenes.
* :mod:`~tasksim.targets.taskonomy`: labels of the Taskonomy sample building for the real
  configuration's probe images (label URLs, verified downloads, decoding per task).
* :mod:`~tasksim.targets.user`: a user's own task (a CSV of classes, a folder of label maps).
* :mod:`~tasksim.targets.store`: one HDF5 target file per target set, and its reader.
"""

from tasksim.targets.kinds import (
    LABEL_KINDS,
    TASK_LABEL_KINDS,
    LabelFileError,
    LabelKind,
    NoLabelKindError,
    TargetError,
    TaskLabels,
    check_labels,
    has_label_kind,
    label_kind,
    labelled_tasks,
)
from tasksim.targets.minitaskonomy import mini_task_labels, minitaskonomy_targets
from tasksim.targets.store import (
    ProbeMismatchError,
    check_same_probe,
    read_targets,
    read_task_labels,
    recorded_sha256,
    targets_info,
    write_targets,
)
from tasksim.targets.taskonomy import (
    SAMPLE_LABELS,
    decode_label,
    label_url,
    probe_image_urls,
    taskonomy_targets,
    taskonomy_task_labels,
)
from tasksim.targets.user import class_labels_from_csv, label_maps_from_folder

__all__ = [
    "LABEL_KINDS", "SAMPLE_LABELS", "TASK_LABEL_KINDS", "LabelFileError", "LabelKind", "NoLabelKindError",
    "ProbeMismatchError", "TargetError", "TaskLabels", "check_labels", "check_same_probe",
    "class_labels_from_csv", "decode_label", "has_label_kind", "label_kind", "label_maps_from_folder",
    "label_url", "labelled_tasks", "mini_task_labels", "minitaskonomy_targets", "probe_image_urls",
    "read_targets", "read_task_labels", "recorded_sha256", "targets_info", "taskonomy_targets",
    "taskonomy_task_labels", "write_targets",
]
