"""Small I/O helpers shared by every stage: atomic writes and HDF5 opening.

Every output is written under a temporary name in its final directory and renamed into place
only when complete (``os.replace`` is atomic on POSIX within one file system), so an interrupted
run never leaves a file that looks finished; Snakemake re-runs the job and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (``/proc/self/status``);
    elsewhere set and restored at once under a lock."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it to ``dest`` if the block succeeds.

    On any exception the temporary file is removed and ``dest`` is left untouched. The file gets
    the permissions of an ordinary new file (``0o666 & ~umask``), not mkstemp's private 0600.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".part", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


class NonFiniteError(ValueError):
    """An array that must be finite (a result matrix, stored activations) holds NaN or inf."""


def check_finite_matrix(matrix: np.ndarray, labels: list[str] | tuple[str, ...], dest: str,
                        limit: int = 8) -> None:
    """Raise :class:`NonFiniteError` naming ``dest`` and the ``(row, column)`` label pairs of the
    first ``limit`` NaN / inf entries of a square labelled matrix; no-op if it is all finite."""
    m = np.asarray(matrix, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(m))
    if not len(bad):
        return
    shown = ", ".join(f"({labels[i]}, {labels[j]})={m[i, j]}" for i, j in bad[:limit])
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    raise NonFiniteError(f"refusing to write {dest}: {len(bad)} non-finite entries {shown}{more}; "
                         "a similarity is undefined for these model pairs (see the rule's log)")


def hdf5_locking(setting: bool | None = None) -> bool:
    """Whether HDF5 file locking is on: an explicit setting wins, else ``HDF5_USE_FILE_LOCKING``."""
    if setting is not None:
        return bool(setting)
    return os.environ.get("HDF5_USE_FILE_LOCKING", "TRUE").upper() not in {"FALSE", "0", "NO"}


def open_h5(path: str | os.PathLike[str], mode: str = "r", locking: bool | None = None) -> h5py.File:
    """Open an HDF5 file, honouring the file-locking switch (off on shared file systems).

    Errors name the file: a missing or corrupt file raises ``OSError`` with the path in the message.
    """
    try:
        return h5py.File(path, mode, locking=hdf5_locking(locking))
    except OSError as err:
        raise OSError(f"cannot open HDF5 file {os.fspath(path)!r} (mode {mode!r}): {err}") from err


def str_dataset(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    """Write a 1-D variable-length UTF-8 string dataset."""
    return group.create_dataset(name, data=np.array(values, dtype=object),
                                dtype=h5py.string_dtype("utf-8"))


def content_sha256(ids: Sequence[str], images: Iterable[np.ndarray]) -> str:
    """SHA-256 over ids and image bytes in row order (UTF-8 id + NUL, then the uint8 image): the
    identity of a probe set, recorded by every file computed from it."""
    h = hashlib.sha256()
    for i, img in zip(ids, images, strict=True):
        h.update(i.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Library versions recorded in every output file (read from the installed distributions,
    so nothing heavy is imported)."""
    from importlib import metadata

    from tasksim import __version__

    out = {"tasksim": __version__}
    for dist in ("torch", "numpy", "h5py"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[dist] = "not installed"
    return out


def read_str(ds: h5py.Dataset) -> list[str]:
    """Read a string dataset written by :func:`str_dataset` as a list of ``str``."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in ds[()]]


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically (sorted keys, indented)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def prefixed_errors(where: str) -> Iterator[None]:
    """Re-raise a ``ValueError`` of the block (same type where possible) prefixed with ``where``,
    e.g. the model and layer whose computation failed."""
    try:
        yield
    except ValueError as err:
        msg = f"{where}: {err}"
        try:
            new = type(err)(msg)
        except Exception:  # noqa: BLE001 - an exception type with another constructor
            new = ValueError(msg)
        raise new from err
