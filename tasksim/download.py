"""Verified downloads: streamed, atomic, SHA-256 checked, retried.

A *source* is any of

* an ``http(s)://`` URL,
* a ``file://`` URL,
* a plain local path (a file, or a mirror directory in which the file name is looked up).

The file is streamed to a temporary name beside ``dest``, hashed while it is written, and renamed
to ``dest`` only if the SHA-256 matches. A mismatch raises :class:`ChecksumError` naming the file,
the expected and the actual hash, and leaves no file behind; network errors and truncated
transfers are retried with exponential back-off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tasksim.io import atomic_path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """Downloaded bytes do not have the expected SHA-256."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(f"SHA-256 mismatch for {name}: expected {expected}, got {actual}; "
                         f"the file was not kept")
        self.name, self.expected, self.actual = name, expected, actual


class TruncatedDownloadError(IOError):
    """The transfer ended before the announced Content-Length."""


def is_url(source: str) -> bool:
    """True for ``http://``, ``https://`` and ``file://`` sources."""
    return urllib.parse.urlparse(str(source)).scheme in {"http", "https", "file"}


def resolve(source: str, filename: str | None = None) -> str:
    """Resolve a source plus an optional file name to one URL or local file path.

    A source ending in ``/`` (URL) or naming a local directory is a *mirror*: ``filename`` is
    appended. ``file://`` URLs become local paths.
    """
    source = str(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        source = urllib.request.url2pathname(parsed.path)
        parsed = urllib.parse.urlparse("")
    if parsed.scheme in {"http", "https"}:
        if filename and source.endswith("/"):
            return source + urllib.parse.quote(filename)
        return source
    path = Path(source).expanduser()
    if filename and (path.is_dir() or source.endswith(("/", os.sep))):
        path = path / filename
    return str(path)


def _copy_stream(src, dst, hasher, expected_len: int | None) -> int:
    n = 0
    while block := src.read(_CHUNK):
        dst.write(block)
        hasher.update(block)
        n += len(block)
    if expected_len is not None and n != expected_len:
        raise TruncatedDownloadError(f"received {n} of {expected_len} bytes")
    return n


def fetch(source: str, dest: str | os.PathLike[str], sha256: str | None, *, filename: str | None = None,
          retries: int = 3, backoff: float = 2.0, timeout: float = 60.0) -> Path:
    """Fetch ``source`` (URL, ``file://`` URL, local file or mirror directory) to ``dest``.

    Parameters
    ----------
    source, filename
        Where the bytes come from; see :func:`resolve`.
    dest
        Final path; written atomically.
    sha256
        Expected hex digest. ``None`` skips verification (only for sources without a published
        hash, and logged as a warning).
    retries
        Attempts for transient errors (network errors, truncated transfers). A checksum mismatch
        of a local file is not retried; a mismatch of a network download is retried once more in
        case the transfer was corrupted, then raised.
    """
    dest = Path(dest)
    where = resolve(source, filename)
    name = filename or Path(urllib.parse.urlparse(where).path).name or str(dest.name)
    expected = sha256.lower() if sha256 else None
    remote = urllib.parse.urlparse(where).scheme in {"http", "https"}
    if not remote and not Path(where).is_file():
        raise FileNotFoundError(f"weights/data source not found: {where} (for {dest})")
    last: Exception | None = None
    for attempt in range(1, max(1, retries) + 1):
        hasher = hashlib.sha256()
        try:
            with atomic_path(dest) as tmp, open(tmp, "wb") as out:
                if remote:
                    req = urllib.request.Request(where, headers={"User-Agent": "tasksim"})
                    with urllib.request.urlopen(req, timeout=timeout) as resp:
                        length = resp.headers.get("Content-Length")
                        _copy_stream(resp, out, hasher, int(length) if length else None)
                else:
                    with open(where, "rb") as src:
                        _copy_stream(src, out, hasher, None)
                out.flush()
                actual = hasher.hexdigest()
                if expected is None:
                    log.warning("no SHA-256 given for %s; stored unverified (sha256 %s)", where, actual)
                elif actual != expected:
                    raise ChecksumError(name, expected, actual)
            log.info("fetched %s -> %s (sha256 %s)", where, dest, actual)
            return dest
        except ChecksumError as err:
            last = err
            if not remote or attempt >= retries:
                raise
        except (urllib.error.URLError, TimeoutError, ConnectionError, TruncatedDownloadError) as err:
            last = err
            if attempt >= retries:
                break
        wait = backoff * 2 ** (attempt - 1)
        log.warning("attempt %d/%d for %s failed (%s); retrying in %.1f s", attempt, retries, where, last, wait)
        time.sleep(wait)
    raise OSError(f"download of {where} to {dest} failed after {retries} attempts: {last}") from last


def copy_verified(src: str | os.PathLike[str], dest: str | os.PathLike[str], sha256: str) -> Path:
    """Copy a local file with verification (same contract as :func:`fetch`)."""
    return fetch(os.fspath(src), dest, sha256, retries=1)


__all__ = ["ChecksumError", "TruncatedDownloadError", "fetch", "resolve", "is_url", "copy_verified"]
