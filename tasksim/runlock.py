"""One pipeline run per data and results directory: an exclusive lock held while jobs run.

Snakemake's own lock lives in the working directory's ``.snakemake/``, so two runs started from
different working directories with the same absolute ``data_dir`` / ``results_dir`` would both
write there and race on the renames of the atomic writes. :func:`hold_run_lock` takes an
exclusive, non-blocking ``fcntl.flock`` on ``<dir>/.tasksim.lock`` for each directory and writes
the holder (pid, host, working directory, start time) into it; a second run is refused naming
that holder. The lock belongs to the open file, so it ends with the process even if the process is
killed; the file itself stays (an unlocked file is no lock). The workflow takes it in its
``onstart`` handler, which Snakemake runs only in the main process and only when jobs will run
(not for ``-n`` dry runs, ``--report`` or ``--lint``; jobs spawned on cluster nodes run with
``--no-hooks``).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".tasksim.lock"

#: Open lock files of this process (directory -> file object); closing one releases its lock.
_HELD: dict[Path, object] = {}


class RunLockedError(RuntimeError):
    """Another run holds the lock of a data or results directory."""


def holder_text() -> str:
    """What a lock file says about its holder: this process."""
    since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"pid={os.getpid()} host={socket.gethostname()} cwd={os.getcwd()} since={since}\n"


def _lock_one(directory: Path) -> object | None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fh = open(path, "a+")  # noqa: SIM115 - kept open: the lock lives as long as the file object
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            fh.seek(0)
            holder = fh.read().strip() or "unknown holder (the lock file is empty)"
            fh.close()
            raise RunLockedError(
                f"{directory} is in use by another tasksim run ({holder}); lock file {path}. Wait "
                "for that run to end, or give this run other data_dir / results_dir") from None
        fh.close()
        log.warning("cannot lock %s (%s): the file system does not support flock; running "
                    "without protection against a concurrent run", path, err)
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(holder_text())
    fh.flush()
    return fh


def hold_run_lock(directories: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Lock every directory (created if missing) for the life of this process; all or none:
    raises :class:`RunLockedError` naming the holder if any is locked by another process.
    Directories this process already holds are skipped. Returns the lock files held."""
    taken: list[Path] = []
    try:
        for d in dict.fromkeys(Path(os.path.abspath(os.fspath(p))) for p in directories):
            if d in _HELD:
                continue
            fh = _lock_one(d)
            if fh is not None:
                _HELD[d] = fh
                taken.append(d)
    except BaseException:
        release_run_lock(taken)
        raise
    return [d / LOCK_NAME for d in _HELD]


def release_run_lock(directories: Iterable[str | os.PathLike[str] | Path] | None = None) -> None:
    """Release the locks of ``directories`` (default: all held by this process)."""
    dirs = list(_HELD) if directories is None else [Path(os.path.abspath(os.fspath(p))) for p in directories]
    for d in dirs:
        fh = _HELD.pop(d, None)
        if fh is None:
            continue
        try:
            fh.seek(0)  # type: ignore[attr-defined]
            fh.truncate()  # type: ignore[attr-defined]
        finally:
            fh.close()  # type: ignore[attr-defined]


__all__ = ["LOCK_NAME", "RunLockedError", "hold_run_lock", "holder_text", "release_run_lock"]
