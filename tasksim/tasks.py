"""Task-name registry: one canonical spelling per Taskonomy task.

Taskonomy tasks are spelled three ways in the wild:

* the *taskbank* (old) names of the TensorFlow release and of the papers' code (``rgb2depth``),
* the *visualpriors* (new) names of the official PyTorch port and its weight files
  (``depth_zbuffer``),
* the spellings inside the published affinity pickles (``segmentsemantic_rb``,
  ``vanishing_point_well_defined``, ``impainting_whole``).

tasksim accepts all of them on input and uses **the visualpriors name as the canonical spelling**
in every file name, HDF5 key, table and figure (``display_name`` is used for axis labels).

The table below is the public mapping of ``visualpriors.taskonomy_network.task_mapping`` plus the
pickle spellings and the task groups used by the RSA and attribution papers;
``tests/test_tasks.py`` checks it against ``../shared/taskonomy/task_names.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One Taskonomy task and all of its spellings."""

    name: str  # canonical (visualpriors) name
    taskbank_name: str  # old name (papers, TF taskbank)
    pickle_name: str  # spelling inside the Taskonomy affinity / win-rate pickles
    display_name: str  # label for figures
    group: str | None  # "2D", "3D", "semantic", "low_dim_geometric"; None for multi-image tasks
    single_image: bool  # False for the multi-image (siamese) tasks
    low_saturation: bool  # input clipped to [0.1, 0.9] before scaling (docs/methods.md)
    is_target: bool  # appears as a target in the Taskonomy affinity files


_TABLE: tuple[Task, ...] = (
    # name, taskbank, pickle, display, group, single, lowsat, target
    Task("autoencoding", "autoencoder", "autoencoder", "Autoencoding", "2D", True, True, True),
    Task("colorization", "colorization", "colorization", "Colorization", "2D", True, False, False),
    Task("curvature", "curvature", "curvature", "Curvature", "3D", True, True, True),
    Task("denoising", "denoise", "denoise", "Denoising", "2D", True, True, True),
    Task("edge_texture", "edge2d", "edge2d", "2D Edges", "2D", True, True, True),
    Task("edge_occlusion", "edge3d", "edge3d", "Occlusion Edges", "3D", True, True, True),
    Task("keypoints2d", "keypoint2d", "keypoint2d", "2D Keypoints", "2D", True, True, True),
    Task("keypoints3d", "keypoint3d", "keypoint3d", "3D Keypoints", "3D", True, True, True),
    Task("reshading", "reshade", "reshade", "Reshading", "3D", True, True, True),
    Task("depth_zbuffer", "rgb2depth", "rgb2depth", "Z-Depth", "3D", True, True, True),
    Task("depth_euclidean", "rgb2mist", "rgb2mist", "Distance", "3D", True, True, True),
    Task("normal", "rgb2sfnorm", "rgb2sfnorm", "Normals", "3D", True, True, True),
    Task("room_layout", "room_layout", "room_layout", "Layout", "low_dim_geometric", True, True, True),
    Task("segment_unsup25d", "segment25d", "segment25d", "2.5D Segm.", "3D", True, True, True),
    Task("segment_unsup2d", "segment2d", "segment2d", "2D Segm.", "2D", True, True, True),
    Task("vanishing_point", "vanishing_point", "vanishing_point_well_defined", "Vanishing Pts.",
         "low_dim_geometric", True, False, True),
    Task("segment_semantic", "segmentsemantic", "segmentsemantic_rb", "Semantic Segm.", "semantic",
         True, False, True),
    Task("class_object", "class_1000", "class_1000", "Object Class.", "semantic", True, False,
         True),
    Task("class_scene", "class_places", "class_places", "Scene Class.", "semantic", True, False, True),
    Task("inpainting", "inpainting_whole", "impainting_whole", "In-painting", "2D", True, False, False),
    # multi-image tasks: encoders exist, optional extras, no group in the papers
    Task("egomotion", "ego_motion", "ego_motion", "Egomotion", None, False, False, True),
    Task("fixated_pose", "fix_pose", "fix_pose", "Cam. Pose (fix)", None, False, False, True),
    Task("nonfixated_pose", "non_fixated_pose", "non_fixated_pose", "Cam. Pose (nonfix)", None, False,
         False, True),
    Task("point_matching", "point_match", "point_match", "Matching", None, False, False, True),
    Task("jigsaw", "jigsaw", "jigsaw", "Jigsaw", None, False, False, False),
)

TASKS: dict[str, Task] = {t.name: t for t in _TABLE}

#: The 20 single-image tasks compared by the RSA and attribution papers, in the papers' order
#: (``index_in_20_task_list`` of task_names.csv).
PAPER_TASKS: tuple[str, ...] = (
    "autoencoding", "curvature", "denoising", "edge_texture", "edge_occlusion", "keypoints2d",
    "keypoints3d", "colorization", "reshading", "depth_zbuffer", "depth_euclidean", "normal",
    "room_layout", "segment_unsup25d", "segment_unsup2d", "vanishing_point", "segment_semantic",
    "class_object", "class_scene", "inpainting",
)

#: The 14 tasks whose input is clipped to [0.1, 0.9] before scaling to [-1, 1] (docs/methods.md).
LOW_SATURATION_TASKS: tuple[str, ...] = tuple(t.name for t in _TABLE if t.low_saturation)

#: The multi-image tasks (optional extras).
MULTI_IMAGE_TASKS: tuple[str, ...] = tuple(t.name for t in _TABLE if not t.single_image)

#: Task groups of the RSA / attribution papers, for colouring figures.
GROUPS: tuple[str, ...] = ("2D", "3D", "low_dim_geometric", "semantic")

_ALIASES: dict[str, str] = {}
for _t in _TABLE:
    for _alias in (_t.name, _t.taskbank_name, _t.pickle_name):
        _ALIASES[_alias.lower()] = _t.name


class UnknownTaskError(ValueError):
    """A task name that is none of the known spellings."""


def canonical(name: str) -> str:
    """Return the canonical (visualpriors) spelling of any known task spelling.

    >>> canonical("rgb2depth")
    'depth_zbuffer'
    >>> canonical("segmentsemantic_rb")
    'segment_semantic'
    """
    try:
        return _ALIASES[name.strip().lower()]
    except KeyError:
        valid = ", ".join(sorted(TASKS))
        raise UnknownTaskError(
            f"unknown task name {name!r}; valid names (old taskbank spellings are accepted too): {valid}"
        ) from None


def canonical_list(names: Iterable[str]) -> list[str]:
    """Canonicalise a list of task names, refusing duplicates after mapping."""
    out: list[str] = []
    for n in names:
        c = canonical(n)
        if c in out:
            raise ValueError(f"task {n!r} is listed twice (as {c!r})")
        out.append(c)
    return out


def is_known(name: str) -> bool:
    """True if ``name`` is any known spelling of a Taskonomy task."""
    return name.strip().lower() in _ALIASES


def display_name(name: str) -> str:
    """Figure label of a task; a model that is not a Taskonomy task keeps its own name."""
    return TASKS[canonical(name)].display_name if is_known(name) else name


def group(name: str) -> str | None:
    """Task group (2D, 3D, semantic, low_dim_geometric) or None (unknown / multi-image)."""
    return TASKS[canonical(name)].group if is_known(name) else None


def pickle_name(name: str) -> str:
    """Spelling of a task in the Taskonomy affinity pickles."""
    return TASKS[canonical(name)].pickle_name
