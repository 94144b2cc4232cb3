"""Labels of the Taskonomy sample building for the probe images of the real configuration.

The probe images come from folder ``rgb/`` of the sample building (``probe.urls``: repository
and pinned commit); every other task keeps its label of the same view in a folder of its own,
under the view's name with the task's *domain*::

    rgb/point_12_view_3_domain_rgb.png  ->  depth_zbuffer/point_12_view_3_domain_depth_zbuffer.png
                                            class_scene/point_12_view_3_domain_class_places.npy
                                            point_info/point_12_view_3_domain_point_info.json

:data:`SAMPLE_LABELS` says, per task, where the label lies and how it is decoded (from the
building's data README and Taskonomy's loaders; units are kept where the README gives them):

=====================  ==================================  =========================================
decoder                file                                label
=====================  ==================================  =========================================
``depth``              16-bit PNG, 1/512 m, 65535 missing  metres, NaN where missing, ``[H, W, 1]``
``normal``             8-bit RGB, 127-centred              ``v / 255 * 2 - 1`` in [-1, 1], ``[H, W, 3]``
``curvature``          8-bit, channels 0-1, 127 = zero     ``(v - 127) / 127``, ``[H, W, 2]``
``intensity``          8- or 16-bit gray (edges, key-      ``v / (2^bits - 1)`` in [0, 1], ``[H, W, 1]``
                       points, reshading)
``rgb``                the probe image's own file          ``v / 255`` in [0, 1], ``[H, W, 3]``
                       (autoencoding, denoising,
                       colorization, in-painting)
``class_map``          PNG of class ids (semantic          int ``[H, W]``: 0 uncertain, 1 background,
                       segmentation, 18 classes)           2-17 the COCO classes of Taskonomy
``segments``           PNG of segment ids (or colours)     int ``[H, W]``, ids within the image only
``softmax``            ``.npy``, one score per class       the argmax: 1000 ImageNet / 365 Places
``vanishing_point``    point_info JSON                     9 floats (below)
``room_layout``        point_info JSON                     9 floats (below)
=====================  ==================================  =========================================

Gray images stored with three channels are read as their (equal) first channel, or as luminance
(ITU-R 601 weights) when the channels differ.

The low-dimensional geometric labels follow Taskonomy's loaders, without their final
standardisation. Both start from the camera's rotation ``camera_rotation_final`` (static x-y-z
Euler angles) with its first two rows exchanged and the new second row negated (the loaders'
"flipped" camera frame), and first turn the world about its vertical axis by the quarter turn
that makes the axes well defined for this view:

* ``vanishing_point``: the quarter turn that brings the world's x and y axes closest to the
  camera's viewing direction (smallest sum of the two angles to ``-z`` of the camera); the label
  is the three rows of the turned camera rotation, i.e. the world's x, y and z directions in the
  camera frame (the target of Taskonomy's ``vanishing_point_well_defined``).
* ``room_layout``: the quarter turn that brings the world's x axis closest to the viewing
  direction; the room's bounding box (``bounding_box_ranges``, its y range mirrored, then turned)
  gives the label ``[centre of the box in the camera frame (3, m), Euler angles of the turned
  camera rotation (3, rad), extent of the box along x, y, z (3, m)]``.

Downloads go through :func:`tasksim.download.fetch` (streamed, atomic, retried in proportion to
the fault) into a cache that a rerun reuses; no checksum is published for these files, so the
SHA-256 of every fetched file is recorded with the labels and, given back as ``expected``, is
verified on the next run (as for the probe images).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from tasksim.download import fetch
from tasksim.io import sha256_file
from tasksim.probe import probe_info, read_url_list
from tasksim.probe.preprocess import to_rgb_uint8
from tasksim.targets.kinds import LabelFileError, LabelKind, TargetError, TaskLabels, label_kind
from tasksim.targets.maps import fit_map
from tasksim.tasks import canonical

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Depth PNGs: units of 1/512 m; this value marks a pixel without depth.
DEPTH_UNITS_PER_METRE = 512.0
DEPTH_MISSING = 65535
#: Curvature PNGs: the pixel value of zero curvature.
CURVATURE_ZERO = 127.0
_VIEW_NAME = re.compile(r"^point_(\d+)_view_(\d+)_domain_rgb\.png$")
_LUMINANCE = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class SampleLabel:
    """Where one task's labels lie in the sample building and how they are decoded."""

    task: str
    folder: str
    domain: str
    suffix: str
    decoder: str
    n_channels: int | None = None
    n_classes: int | None = None


def _png(task: str, decoder: str, channels: int | None = None, folder: str | None = None,
         domain: str | None = None, classes: int | None = None) -> SampleLabel:
    return SampleLabel(task, folder or task, domain or folder or task, ".png", decoder, channels, classes)


SAMPLE_LABELS: dict[str, SampleLabel] = {s.task: s for s in (
    _png("autoencoding", "rgb", 3, folder="rgb"),
    _png("denoising", "rgb", 3, folder="rgb"),
    _png("colorization", "rgb", 3, folder="rgb"),
    _png("inpainting", "rgb", 3, folder="rgb"),
    _png("curvature", "curvature", 2, folder="principal_curvature"),
    _png("edge_texture", "intensity", 1),
    _png("edge_occlusion", "intensity", 1),
    _png("keypoints2d", "intensity", 1),
    _png("keypoints3d", "intensity", 1),
    _png("reshading", "intensity", 1),
    _png("depth_zbuffer", "depth", 1),
    _png("depth_euclidean", "depth", 1),
    _png("normal", "normal", 3),
    _png("segment_unsup2d", "segments"),
    _png("segment_unsup25d", "segments"),
    _png("segment_semantic", "class_map", domain="segmentsemantic", classes=18),
    SampleLabel("class_object", "class_object", "class_object", ".npy", "softmax", n_classes=1000),
    SampleLabel("class_scene", "class_scene", "class_places", ".npy", "softmax", n_classes=365),
    SampleLabel("vanishing_point", "point_info", "point_info", ".json", "vanishing_point", 9),
    SampleLabel("room_layout", "point_info", "point_info", ".json", "room_layout", 9),
)}

#: The label kind each decoder produces (checked against the declared kinds by the tests).
DECODER_KINDS: dict[str, LabelKind] = {
    "depth": "dense_regression", "normal": "dense_regression", "curvature": "dense_regression",
    "intensity": "dense_regression", "rgb": "dense_regression", "class_map": "dense_class",
    "segments": "dense_instance", "softmax": "class", "vanishing_point": "vector_regression",
    "room_layout": "vector_regression",
}


def sample_label(task: str) -> SampleLabel:
    """The :class:`SampleLabel` of a task (any spelling); a task without one is refused."""
    name = canonical(task)
    if name not in SAMPLE_LABELS:
        raise TargetError(f"the Taskonomy sample building holds no single-image label for task {name!r}")
    return SAMPLE_LABELS[name]


# --------------------------------------------------------------------------- names and URLs

def view_of(image_name: str) -> tuple[int, int]:
    """``(point, view)`` of a sample-building RGB file name ``point_P_view_V_domain_rgb.png``."""
    m = _VIEW_NAME.match(image_name)
    if m is None:
        raise TargetError(f"{image_name!r} is not a Taskonomy RGB file name (point_P_view_V_domain_rgb.png)")
    return int(m.group(1)), int(m.group(2))


def label_file_name(image_name: str, task: str) -> str:
    """File name of ``task``'s label of the view shown by RGB file ``image_name``."""
    spec = sample_label(task)
    point, view = view_of(image_name)
    return f"point_{point}_view_{view}_domain_{spec.domain}{spec.suffix}"


def label_url(image_url: str, task: str) -> str:
    """Label URL (or path) of ``task`` for a probe image URL (or path) ``.../<folder>/<rgb name>``.

    The image's folder is replaced by the task's folder, its name by the label's, so any source
    laid out like the sample building (raw GitHub files, a mirror of the repository) works.
    """
    head, sep, name = image_url.rpartition("/")
    base, sep2, _folder = head.rpartition("/")
    if not sep or not sep2:
        raise TargetError(f"probe image URL {image_url!r} has no folder: labels are looked up in the "
                          "folder beside it, as in the Taskonomy sample building")
    label = label_file_name(urllib.parse.unquote(name), task)
    return f"{base}/{sample_label(task).folder}/{urllib.parse.quote(label)}"


def probe_image_urls(url_list: str | os.PathLike[str], ids: Sequence[str] | None = None) -> list[str]:
    """Image URLs of a probe URL list file (``D/probe/<name>.urls.txt``), in probe order.

    With ``ids`` (the probe file's), each URL's file name must end the id of the same row.
    """
    urls = [u for u, _ in read_url_list(url_list)]
    if ids is None:
        return urls
    if len(urls) != len(ids):
        raise TargetError(f"probe list file {os.fspath(url_list)} has {len(urls)} URLs for {len(ids)} "
                          "probe images: it is not the list of this probe set")
    for row, (url, pid) in enumerate(zip(urls, ids, strict=True)):
        name = urllib.parse.unquote(url.rpartition("/")[2])
        if not pid.endswith(name):
            raise TargetError(f"probe list file {os.fspath(url_list)}, entry {row + 1}: {url} is not "
                              f"probe image {pid!r}")
    return urls


# --------------------------------------------------------------------------- decoding

def _png_bit_depth(data: bytes, where: str) -> int:
    if data[:8] != PNG_SIGNATURE or len(data) < 25:
        raise LabelFileError(f"{where} is not a PNG file")
    return int(data[24])


def read_png(data: bytes, where: str) -> tuple[np.ndarray, int]:
    """Pixels ``[H, W]`` or ``[H, W, C]`` and bit depth of PNG bytes; errors name ``where``."""
    bits = _png_bit_depth(data, where)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            arr = np.array(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise LabelFileError(f"cannot decode {where}: {err}") from err
    return arr, bits


def _gray(arr: np.ndarray) -> np.ndarray:
    """One channel of a gray image: the first when all colour channels agree, else luminance."""
    if arr.ndim == 2:
        return arr.astype(np.float64)
    rgb = arr[..., :3].astype(np.float64) if arr.shape[-1] >= 3 else arr[..., :1].astype(np.float64)
    if rgb.shape[-1] == 1 or (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
        return rgb[..., 0]
    return rgb @ _LUMINANCE


def decode_depth(data: bytes, where: str) -> np.ndarray:
    """Depth PNG (16-bit, 1/512 m, 65535 missing) -> metres ``[H, W, 1]``, NaN where missing."""
    arr, bits = read_png(data, where)
    if bits != 16 or arr.ndim != 2:
        raise LabelFileError(f"{where}: a depth label must be a 16-bit single-channel PNG, got {bits}-bit "
                             f"with shape {arr.shape}")
    raw = arr.astype(np.float64)
    metres = np.where(raw == DEPTH_MISSING, np.nan, raw / DEPTH_UNITS_PER_METRE)
    return metres[..., None].astype(np.float32)


def _eight_bit_channels(data: bytes, where: str, channels: int, what: str) -> np.ndarray:
    arr, bits = read_png(data, where)
    if bits != 8 or arr.ndim != 3 or arr.shape[-1] < channels:
        raise LabelFileError(f"{where}: a {what} label must be an 8-bit PNG with at least {channels} "
                             f"channels, got {bits}-bit with shape {arr.shape}")
    return arr[..., :channels].astype(np.float64)


def decode_normal(data: bytes, where: str) -> np.ndarray:
    """Surface-normal PNG (8-bit RGB, 127-centred) -> ``[H, W, 3]`` in [-1, 1]."""
    return (_eight_bit_channels(data, where, 3, "surface normal") / 255.0 * 2.0 - 1.0).astype(np.float32)


def decode_curvature(data: bytes, where: str) -> np.ndarray:
    """Principal-curvature PNG (channels 0 and 1, 127 = zero) -> ``[H, W, 2]``."""
    v = _eight_bit_channels(data, where, 2, "curvature")
    return ((v - CURVATURE_ZERO) / CURVATURE_ZERO).astype(np.float32)


def decode_intensity(data: bytes, where: str) -> np.ndarray:
    """Gray PNG (8 or 16 bit) -> ``[H, W, 1]`` in [0, 1]."""
    arr, bits = read_png(data, where)
    if bits not in (8, 16):
        raise LabelFileError(f"{where}: expected an 8- or 16-bit PNG, got {bits}-bit")
    return (_gray(arr) / (2.0 ** bits - 1.0))[..., None].astype(np.float32)


def decode_rgb(data: bytes, where: str) -> np.ndarray:
    """An RGB image -> ``[H, W, 3]`` in [0, 1]."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = to_rgb_uint8(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise LabelFileError(f"cannot decode {where}: {err}") from err
    return (rgb.astype(np.float32) / 255.0).astype(np.float32)


def decode_id_map(data: bytes, where: str) -> np.ndarray:
    """PNG of class or segment ids (one channel; or equal colour channels) -> int64 ``[H, W]``."""
    arr, _ = read_png(data, where)
    if arr.ndim == 3:
        chans = arr[..., : min(arr.shape[-1], 3)]
        if not all(np.array_equal(chans[..., 0], chans[..., c]) for c in range(chans.shape[-1])):
            raise LabelFileError(f"{where}: an id map must have one channel, got {arr.shape[-1]} "
                                 "channels that differ")
        arr = chans[..., 0]
    return arr.astype(np.int64)


def decode_segments(data: bytes, where: str) -> np.ndarray:
    """PNG of segment ids -> int64 ``[H, W]``.

    One channel (or equal colour channels): the ids as stored. Colour-coded segments (channels
    that differ): each distinct colour becomes one id, numbered in sorted order of the colours;
    segment ids name segments within one image only, so any one-to-one numbering will do.
    """
    arr, _ = read_png(data, where)
    if arr.ndim == 3:
        chans = arr[..., : min(arr.shape[-1], 3)].astype(np.int64)
        if any(not np.array_equal(chans[..., 0], chans[..., c]) for c in range(chans.shape[-1])):
            n = chans.shape[-1]
            code = sum(chans[..., c] << (16 * (n - 1 - c)) for c in range(n))  # sorts as (R, G, B)
            return np.unique(code, return_inverse=True)[1].reshape(code.shape).astype(np.int64)
        arr = chans[..., 0]
    return arr.astype(np.int64)


def decode_class_map(data: bytes, where: str, n_classes: int) -> np.ndarray:
    """Semantic class PNG -> int64 ``[H, W]`` with ids in ``0 .. n_classes - 1``."""
    ids = decode_id_map(data, where)
    if ids.size and ids.max() >= n_classes:
        raise LabelFileError(f"{where}: class id {ids.max()} is out of range for {n_classes} classes")
    return ids


def decode_softmax(data: bytes, where: str, n_classes: int) -> np.ndarray:
    """``.npy`` of ``n_classes`` class scores (softmax or logits) -> the argmax class, int64 scalar."""
    try:
        scores = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise LabelFileError(f"cannot read {where} as a .npy array: {err}") from err
    scores = np.squeeze(scores)
    if scores.shape != (n_classes,) or scores.dtype.kind not in "biuf":
        raise LabelFileError(f"{where}: expected {n_classes} class scores, got shape {scores.shape} "
                             f"dtype {scores.dtype}")
    if not np.all(np.isfinite(scores)):
        raise LabelFileError(f"{where}: class scores are not all finite")
    return np.int64(np.argmax(scores))


def read_point_info(data: bytes, where: str, keys: Sequence[str]) -> dict[str, Any]:
    """A view's point_info JSON, checked to hold ``keys``."""
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelFileError(f"cannot read {where} as JSON: {err}") from err
    missing = [k for k in keys if not isinstance(info, dict) or k not in info]
    if missing:
        raise LabelFileError(f"{where}: point_info JSON lacks {', '.join(missing)}")
    return info


# --------------------------------------------------------------------------- camera geometry

def euler_to_matrix(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation of static x-y-z Euler angles: ``Rz(az) @ Ry(ay) @ Rx(ax)``."""
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def matrix_to_euler(r: np.ndarray) -> np.ndarray:
    """Static x-y-z Euler angles of a rotation (inverse of :func:`euler_to_matrix`)."""
    cy = math.hypot(r[0, 0], r[1, 0])
    if cy > 1e-12:
        return np.array([math.atan2(r[2, 1], r[2, 2]), math.atan2(-r[2, 0], cy), math.atan2(r[1, 0], r[0, 0])])
    return np.array([math.atan2(-r[1, 2], r[1, 1]), math.atan2(-r[2, 0], cy), 0.0])


def flipped_pose(info: Mapping[str, Any]) -> np.ndarray:
    """4 x 4 camera-to-world pose with rows 0 and 1 exchanged and the new row 1 negated."""
    pose = np.eye(4)
    pose[:3, :3] = euler_to_matrix(*map(float, info["camera_rotation_final"]))
    pose[:3, 3] = np.asarray(info["camera_location"], dtype=np.float64)
    return np.stack([pose[1], -pose[0], pose[2], pose[3]])


def quarter_turn(rotation: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Inverse of the quarter turn about world z that brings world ``axes`` closest to the view.

    For each turn ``W`` (0, 90, 180, 270 degrees) the angle between each turned world axis, in
    camera coordinates (``rotation.T @ W e``), and the viewing direction ``-z`` is summed over
    ``axes``; the turn with the smallest sum (the first on ties) is chosen.
    """
    best: tuple[float, np.ndarray] | None = None
    for k in range(4):
        c, s = round(math.cos(k * math.pi / 2)), round(math.sin(k * math.pi / 2))
        turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
        total = 0.0
        for a in axes:
            in_cam = rotation.T @ turn[:, a]
            total += math.degrees(math.acos(float(np.clip(-in_cam[2], -1.0, 1.0))))
        if best is None or total < best[0] - 1e-9:
            best = (total, turn.T)
    assert best is not None
    return best[1]


def vanishing_point_label(info: Mapping[str, Any]) -> np.ndarray:
    """The 9 floats of ``vanishing_point`` from a view's point_info (module docstring)."""
    rotation = flipped_pose(info)[:3, :3]
    return (quarter_turn(rotation, (0, 1)) @ rotation).reshape(9).astype(np.float32)


def room_layout_label(info: Mapping[str, Any]) -> np.ndarray:
    """The 9 floats of ``room_layout`` from a view's point_info (module docstring)."""
    box = info["bounding_box_ranges"]
    ranges = np.array([box["x"], [-box["y"][1], -box["y"][0]], box["z"]], dtype=np.float64)
    pose = flipped_pose(info)
    turn = np.eye(4)
    turn[:3, :3] = quarter_turn(pose[:3, :3], (0,))
    ranges = np.sort(turn[:3, :3] @ ranges, axis=1)
    pose = turn @ pose
    centre_world = np.append(ranges.mean(axis=1), 1.0)
    centre_cam = (np.linalg.inv(pose) @ centre_world)[:3]
    return np.concatenate([centre_cam, matrix_to_euler(pose[:3, :3]), ranges[:, 1] - ranges[:, 0]]).astype(np.float32)


# --------------------------------------------------------------------------- per task

def decode_label(task: str, data: bytes, where: str) -> np.ndarray:
    """Decode one label file of ``task`` (bytes) into its per-image label; errors name ``where``."""
    spec = sample_label(task)
    decoders: dict[str, Callable[[], np.ndarray]] = {
        "depth": lambda: decode_depth(data, where),
        "normal": lambda: decode_normal(data, where),
        "curvature": lambda: decode_curvature(data, where),
        "intensity": lambda: decode_intensity(data, where),
        "rgb": lambda: decode_rgb(data, where),
        "class_map": lambda: decode_class_map(data, where, spec.n_classes or 0),
        "segments": lambda: decode_segments(data, where),
        "softmax": lambda: decode_softmax(data, where, spec.n_classes or 0),
        "vanishing_point": lambda: vanishing_point_label(
            read_point_info(data, where, ("camera_rotation_final", "camera_location"))),
        "room_layout": lambda: room_layout_label(
            read_point_info(data, where, ("camera_rotation_final", "camera_location", "bounding_box_ranges"))),
    }
    try:
        return decoders[spec.decoder]()
    except LabelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise LabelFileError(f"cannot decode {where}: {err!r}") from err


def cache_path(url: str, cache_dir: str | os.PathLike[str]) -> Path:
    """Where a label file is kept: ``<cache_dir>/<folder>/<file name>`` of its URL."""
    head, _, name = url.rpartition("/")
    return Path(cache_dir) / urllib.parse.unquote(head.rpartition("/")[2]) / urllib.parse.unquote(name)


def fetch_label_files(urls: Sequence[str], cache_dir: str | os.PathLike[str],
                      expected: Mapping[str, str] | None = None, ids: Sequence[str] | None = None
                      ) -> list[tuple[Path, str]]:
    """Download (or reuse from the cache) every label file; return ``(path, sha256)`` per URL.

    A cached file whose recorded SHA-256 (``expected``) differs is fetched again; a fetched file
    is verified against it. Errors name the URL and the probe image (``ids``).
    """
    out: list[tuple[Path, str]] = []
    for row, url in enumerate(urls):
        dest = cache_path(url, cache_dir)
        sha = (expected or {}).get(url)
        if dest.exists() and sha is not None and sha256_file(dest) != sha:
            log.warning("cached label file %s does not match its recorded SHA-256: fetched again", dest)
            dest.unlink()
        if not dest.exists():
            try:
                fetch(url, dest, sha)
            except (OSError, ValueError) as err:
                who = f" (probe image {ids[row]})" if ids is not None else ""
                raise LabelFileError(f"label file {url}{who} could not be fetched: {err}") from err
        out.append((dest, sha256_file(dest)))
    return out


def stack_labels(arrays: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Stack per-image labels; a label of another shape than the first is refused, naming its file."""
    for arr, name in zip(arrays, names, strict=True):
        if arr.shape != arrays[0].shape:
            raise LabelFileError(f"{name}: label of shape {arr.shape}, the other labels have {arrays[0].shape}")
    return np.stack(arrays)


def taskonomy_task_labels(task: str, image_urls: Sequence[str], cache_dir: str | os.PathLike[str], *,
                          ids: Sequence[str] | None = None, expected: Mapping[str, str] | None = None,
                          size: int | None = None) -> TaskLabels:
    """Labels of one task for probe images ``image_urls`` (in probe order) of the sample building.

    Dense labels are cut like the probe images (centre square) and resized to ``size`` (``None``:
    kept at the files' size; :mod:`tasksim.targets.maps`).
    """
    spec, kind = sample_label(task), label_kind(task)
    urls = [label_url(u, spec.task) for u in image_urls]
    files = fetch_label_files(urls, cache_dir, expected, ids)
    arrays, names = [], []
    for url, (path, _) in zip(urls, files, strict=True):
        where = f"label file {url} (cached as {path})"
        label = decode_label(spec.task, path.read_bytes(), where)
        arrays.append(fit_map(label, kind, size) if label.ndim >= 2 else label)
        names.append(where)
    values = stack_labels(arrays, names)
    base = urls[0].rpartition("/")[0].rpartition("/")[0] if urls else ""
    return TaskLabels(spec.task, kind, values, n_classes=spec.n_classes, n_channels=spec.n_channels,
                      source=f"taskonomy-sample:{base}", sources=tuple(urls),
                      sha256=tuple(sha for _, sha in files))


def taskonomy_targets(probe_path: str | os.PathLike[str], url_list: str | os.PathLike[str],
                      tasks: Sequence[str], cache_dir: str | os.PathLike[str], *, size: int | None = None,
                      expected: Mapping[str, str] | None = None, locking: bool | None = None
                      ) -> dict[str, TaskLabels]:
    """Labels of ``tasks`` for the probe set ``probe_path`` whose image URLs are in ``url_list``."""
    ids = probe_info(probe_path, locking)["ids"]
    urls = probe_image_urls(url_list, ids)
    return {canonical(t): taskonomy_task_labels(t, urls, cache_dir, ids=ids, expected=expected, size=size)
            for t in tasks}
