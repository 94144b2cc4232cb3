"""A user's own target task: image classes from a CSV, or label maps from a folder.

The probe set of a user's task is a folder of images (``probe.source: folder``); its ids are the
image paths relative to that folder. Labels are matched to the probe ids, so they come out in
probe order whatever order the CSV or the folder has.

* **Classes** (:func:`class_labels_from_csv`): a CSV with the header ``image,label``, one row per
  image. Labels are either all integers (kept as they are, ``n_classes`` = largest + 1) or class
  names, numbered ``0 .. C - 1`` in sorted order of the names. The numbering uses every row of
  the CSV, so it does not depend on which images the probe set drew.
* **Label maps** (:func:`label_maps_from_folder`): one file per image with the image's path minus
  its suffix plus ``.png`` or ``.npy`` (``rooms/a.jpg`` -> ``rooms/a.png``). A map must have its
  image's height and width, and is then cut and resized like the image
  (:mod:`tasksim.targets.maps`). Class and instance maps hold integer ids (PNG: one channel);
  regression maps are ``[H, W]`` or ``[H, W, K]`` (PNG values are divided by ``2^bits - 1``).

Every problem (a probe image without a label, a label for an image the folder does not have, a
duplicate, an unreadable file, a wrong shape) raises :class:`~tasksim.targets.kinds.LabelFileError`
naming the file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from tasksim.targets.kinds import (
    CLASS_KINDS,
    LabelFileError,
    LabelKind,
    TaskLabels,
    check_kind,
    expected_ndim,
)
from tasksim.targets.maps import fit_map
from tasksim.targets.taskonomy import read_png

MAP_SUFFIXES = (".png", ".npy")


# --------------------------------------------------------------------------- classes

def read_class_csv(path: str | os.PathLike[str]) -> dict[str, str]:
    """Rows of an ``image,label`` CSV as ``{image: label}``; duplicates and bad rows are refused."""
    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelFileError(f"label CSV not found: {where}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LabelFileError(f"cannot read label CSV {where}: {err}") from err
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != ["image", "label"]:
        raise LabelFileError(f"label CSV {where}: the first line must be the header 'image,label'")
    out: dict[str, str] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise LabelFileError(f"label CSV {where}, line {lineno}: expected 'image,label', got {row!r}")
        image, label = row[0].strip(), row[1].strip()
        if image in out:
            raise LabelFileError(f"label CSV {where}, line {lineno}: image {image!r} is labelled twice")
        out[image] = label
    return out


def class_codes(labels: Iterable[str]) -> tuple[dict[str, int], tuple[str, ...] | None]:
    """Integer code of each distinct label: integers as they are, else names numbered in sorted order.

    Returns the mapping and the class names (``None`` for integer labels).
    """
    distinct = sorted(set(labels))
    try:
        ints = {lab: int(lab) for lab in distinct}
    except ValueError:
        return {name: i for i, name in enumerate(distinct)}, tuple(distinct)
    if any(v < 0 for v in ints.values()):
        raise ValueError(f"integer class labels must be non-negative, got {min(ints.values())}")
    return ints, None


def class_labels_from_csv(csv_path: str | os.PathLike[str], ids: Sequence[str], task: str = "user",
                          known: Iterable[str] | None = None) -> TaskLabels:
    """Class labels of probe images ``ids`` (in that order) from an ``image,label`` CSV.

    ``known`` is every image the folder holds (default: ``ids``); a CSV row for any other image
    is refused, as is a probe image without a row. Rows for known images outside the probe set
    are ignored.
    """
    where = os.fspath(csv_path)
    rows = read_class_csv(csv_path)
    known_set = set(ids if known is None else known) | set(ids)
    unknown = sorted(set(rows) - known_set)
    if unknown:
        raise LabelFileError(f"label CSV {where} labels {len(unknown)} image(s) that are not in the image "
                             f"folder, e.g. {unknown[:3]}")
    missing = [i for i in ids if i not in rows]
    if missing:
        raise LabelFileError(f"label CSV {where} has no label for {len(missing)} probe image(s), "
                             f"e.g. {missing[:3]}")
    try:
        codes, names = class_codes(rows.values())
    except ValueError as err:
        raise LabelFileError(f"label CSV {where}: {err}") from err
    values = np.array([codes[rows[i]] for i in ids], dtype=np.int64)
    n_classes = len(names) if names is not None else max(codes.values()) + 1
    return TaskLabels(task, "class", values, n_classes=n_classes, source=f"csv:{where}",
                      sources=tuple(f"{where}:{i}" for i in ids), class_names=names)


# --------------------------------------------------------------------------- label maps

def map_stem(image_id: str) -> str:
    """The label-map path of an image id without suffix (``rooms/a.jpg`` -> ``rooms/a``)."""
    return str(PurePosixPath(image_id).with_suffix(""))


def index_map_folder(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """``{stem: file}`` of the ``.png`` / ``.npy`` files under ``folder``; other files and two files
    of one stem are refused."""
    root = Path(folder)
    if not root.is_dir():
        raise LabelFileError(f"label-map folder not found: {root}")
    out: dict[str, Path] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            continue
        if path.suffix.lower() not in MAP_SUFFIXES:
            raise LabelFileError(f"{path}: not a label map ({', '.join(MAP_SUFFIXES)}) in label-map folder {root}")
        stem = map_stem(path.relative_to(root).as_posix())
        if stem in out:
            raise LabelFileError(f"{path} and {out[stem]} are two label maps for one image")
        out[stem] = path
    return out


def read_map_file(path: Path, kind: LabelKind) -> np.ndarray:
    """One label map (``.png`` or ``.npy``) as ``[H, W]`` ids or ``[H, W, K]`` floats; errors name the file."""
    where = f"label map {path}"
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LabelFileError(f"cannot read {where}: {err}") from err
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise LabelFileError(f"cannot read {where} as a .npy array: {err}") from err
        bits = None
    else:
        arr, bits = read_png(data, where)
    if kind == "dense_regression":
        if arr.dtype.kind not in "biuf":
            raise LabelFileError(f"{where}: regression maps must be numeric, got dtype {arr.dtype}")
        x = arr.astype(np.float32)
        if bits is not None:
            x = x / np.float32(2.0 ** bits - 1.0)
        return x[..., None] if x.ndim == 2 else x
    if arr.ndim != 2:
        raise LabelFileError(f"{where}: {kind} maps must have one channel ([H, W]), got shape {arr.shape}")
    if arr.dtype.kind not in "biu" and not (arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr))):
        raise LabelFileError(f"{where}: {kind} maps must hold integer ids, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise LabelFileError(f"{where}: ids must be non-negative, smallest is {arr.min()}")
    return arr.astype(np.int64)


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header; errors name the file."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError) as err:
        raise LabelFileError(f"cannot read probe image {path}: {err}") from err


def label_maps_from_folder(map_dir: str | os.PathLike[str], ids: Sequence[str], kind: LabelKind, *,
                           image_dir: str | os.PathLike[str] | None = None, size: int | None = None,
                           task: str = "user", known: Iterable[str] | None = None,
                           n_classes: int | None = None) -> TaskLabels:
    """Dense labels of probe images ``ids`` (in that order) from a folder of label maps.

    ``image_dir`` (the probe folder) enables the check that every map has its image's height and
    width; ``size`` is the side the maps are resized to after the centre crop (``None``: crop
    only, all maps must then agree). ``known`` (default ``ids``) is every image of the folder: a
    map for any other image is refused. Class maps get ``n_classes`` (default: largest id in the
    maps as read, before the crop, + 1).
    """
    kind = check_kind(kind)
    if expected_ndim(kind) < 3:
        raise LabelFileError(f"label maps give dense labels; {kind} is not a dense kind")
    files = index_map_folder(map_dir)
    stems = {map_stem(i): i for i in (ids if known is None else [*known, *ids])}
    extra = sorted(str(p) for s, p in files.items() if s not in stems)
    if extra:
        raise LabelFileError(f"label-map folder {map_dir} holds {len(extra)} map(s) for images that are not "
                             f"in the image folder, e.g. {extra[:3]}")
    arrays: list[np.ndarray] = []
    top = -1
    for i in ids:
        path = files.get(map_stem(i))
        if path is None:
            raise LabelFileError(f"no label map for probe image {i!r} in {map_dir} (expected "
                                 f"{map_stem(i)}.png or {map_stem(i)}.npy)")
        label = read_map_file(path, kind)
        if image_dir is not None:
            h, w = image_size(Path(image_dir) / i)
            if label.shape[:2] != (h, w):
                raise LabelFileError(f"label map {path}: shape {label.shape[:2]} but its image {i} is "
                                     f"{h} x {w}")
        if kind in CLASS_KINDS and label.size:
            top = max(top, int(label.max()))
        label = fit_map(label, kind, size)
        if arrays and label.shape != arrays[0].shape:
            raise LabelFileError(f"label map {path}: shape {label.shape} after cropping, the first map "
                                 f"has {arrays[0].shape}")
        arrays.append(label)
    values = np.stack(arrays) if arrays else np.zeros((0,), dtype=np.int64)
    if kind in CLASS_KINDS and n_classes is None:
        n_classes = top + 1
    return TaskLabels(task, kind, values, n_classes=n_classes if kind in CLASS_KINDS else None,
                      source=f"folder:{os.fspath(map_dir)}",
                      sources=tuple(str(files[map_stem(i)]) for i in ids))
