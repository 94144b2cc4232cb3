"""Verified downloads: streamed, atomic, SHA-256 checked, retried in proportion to the fault.

A *source* is any of

* an ``http(s)://`` URL,
* a ``file://`` URL,
* a plain local path (a file, or a mirror directory in which the file name is looked up).

The file is streamed to a temporary name beside ``dest``, hashed while it is written, and renamed
to ``dest`` only if the SHA-256 matches. A mismatch raises :class:`ChecksumError` naming the file,
the expected and the actual hash and what became of the bytes; no partial file is left behind.

Faults are handled in proportion: transient ones (time-outs, dropped connections, bodies cut
short of their ``Content-Length``, HTTP 5xx, 408, and 429 with a short ``Retry-After``) are retried
with exponential back-off; permanent ones (404 and the other 4xx answers, a checksum mismatch)
fail at once with :class:`PermanentDownloadError` or :class:`ChecksumError`, since trying again
would fetch the same wrong answer. Partial files left by a killed earlier attempt
(``.<name>.<random>.part`` beside ``dest``) are removed before a download starts.
"""

from __future__ import annotations

import hashlib
import http.client
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
#: HTTP status codes worth another attempt (besides every 5xx).
TRANSIENT_STATUS = frozenset({408, 425, 429})
#: Longest ``Retry-After`` (seconds) that is waited for before a retry.
MAX_RETRY_AFTER = 60.0


class ChecksumError(ValueError):
    """Bytes do not have the expected SHA-256; the message says what became of them."""

    def __init__(self, name: str, expected: str, actual: str, outcome: str = "") -> None:
        super().__init__(f"SHA-256 mismatch for {name}: expected {expected}, got {actual}"
                         + (f"; {outcome}" if outcome else ""))
        self.name, self.expected, self.actual = name, expected, actual


class TruncatedDownloadError(IOError):
    """The transfer ended before the announced Content-Length."""


class PermanentDownloadError(OSError):
    """The server refused the file for good (HTTP 4xx other than 408/425/429): not retried."""


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


def remove_stale_partials(dest: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary ``.<name>.*.part`` files an interrupted write of ``dest`` left behind.

    Only one job writes a given output at a time (Snakemake's guarantee), so any such file beside
    ``dest`` belongs to a dead attempt. Returns the removed paths.
    """
    dest = Path(dest)
    removed: list[Path] = []
    if dest.parent.is_dir():
        for part in dest.parent.glob(f".{dest.name}.*.part"):
            try:
                part.unlink()
                removed.append(part)
            except FileNotFoundError:
                pass
    if removed:
        log.info("removed %d stale partial file(s) of %s: %s", len(removed), dest,
                 ", ".join(p.name for p in removed))
    return removed


def _copy_stream(src, dst, hasher, expected_len: int | None) -> int:
    n = 0
    while block := src.read(_CHUNK):
        dst.write(block)
        hasher.update(block)
        n += len(block)
    if expected_len is not None and n != expected_len:
        raise TruncatedDownloadError(f"received {n} of {expected_len} bytes")
    return n


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _http_status_error(where: str, err: urllib.error.HTTPError) -> Exception | None:
    """``None`` for a transient status (retry), else the permanent error to raise."""
    if err.code >= 500 or err.code in TRANSIENT_STATUS:
        wait = _retry_after(err)
        if err.code == 429 and wait is not None and wait > MAX_RETRY_AFTER:
            return PermanentDownloadError(
                f"download of {where} refused by the server's rate limit (HTTP 429); it asks to wait "
                f"{wait:.0f} s: try again later, or use a local mirror")
        return None
    what = {404: "not found", 401: "authentication required", 403: "access forbidden",
            410: "gone"}.get(err.code, err.reason or "refused")
    return PermanentDownloadError(f"download of {where} failed: HTTP {err.code} {what} "
                                  f"(a permanent answer, not retried)")


def fetch(source: str, dest: str | os.PathLike[str], sha256: str | None, *, filename: str | None = None,
          retries: int = 4, backoff: float = 2.0, timeout: float = 60.0) -> Path:
    """Fetch ``source`` (URL, ``file://`` URL, local file or mirror directory) to ``dest``.

    Parameters
    ----------
    source, filename
        Where the bytes come from; see :func:`resolve`.
    dest
        Final path; written atomically. Stale partial files of ``dest`` are removed first.
    sha256
        Expected hex digest. ``None`` skips verification (only for sources without a published
        hash, and logged as a warning).
    retries
        Attempts for transient faults (see the module docstring). Permanent faults (HTTP 4xx, a
        checksum mismatch, a missing local file) are raised at the first attempt.
    """
    dest = Path(dest)
    where = resolve(source, filename)
    name = filename or Path(urllib.parse.urlparse(where).path).name or str(dest.name)
    expected = sha256.lower() if sha256 else None
    remote = urllib.parse.urlparse(where).scheme in {"http", "https"}
    if not remote and not Path(where).is_file():
        raise FileNotFoundError(f"weights/data source not found: {where} (for {dest})")
    remove_stale_partials(dest)
    outcome = (f"the downloaded bytes were discarded and {dest} was not written" if remote else
               f"the source file {where} was left as it is and {dest} was not written")
    last: Exception | None = None
    attempts = max(1, retries)
    for attempt in range(1, attempts + 1):
        hasher = hashlib.sha256()
        wait = backoff * 2 ** (attempt - 1)
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
                    raise ChecksumError(name, expected, actual, outcome)
            log.info("fetched %s -> %s (sha256 %s)", where, dest, actual)
            return dest
        except urllib.error.HTTPError as err:
            permanent = _http_status_error(where, err)
            if permanent is not None:
                raise permanent from None
            last = err
            wait = max(wait, min(_retry_after(err) or 0.0, MAX_RETRY_AFTER))
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException,
                TruncatedDownloadError) as err:
            last = err
        if attempt >= attempts:
            break
        log.warning("attempt %d/%d for %s failed (%s); retrying in %.1f s", attempt, attempts, where, last, wait)
        time.sleep(wait)
    raise OSError(f"download of {where} to {dest} failed after {attempts} attempts: {last}") from last


def copy_verified(src: str | os.PathLike[str], dest: str | os.PathLike[str], sha256: str) -> Path:
    """Copy a local file with verification (same contract as :func:`fetch`)."""
    return fetch(os.fspath(src), dest, sha256, retries=1)


__all__ = ["ChecksumError", "PermanentDownloadError", "TruncatedDownloadError", "fetch", "resolve",
           "is_url", "copy_verified", "remove_stale_partials"]
