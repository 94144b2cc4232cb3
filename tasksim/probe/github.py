"""A small, careful client of GitHub's REST API: folder listings that cannot silently truncate.

The probe images of the real configuration come from a folder of a public GitHub repository at a
pinned commit. Listing it has three traps, each handled here:

* **Truncation.** A *recursive* tree answer stops at 100,000 entries (and 7 MB) and only says so
  with ``"truncated": true``. The Taskonomy sample building holds about 25 folders of ~9,500 files
  each, so a recursive listing of the repository ends before ``rgb/``. :func:`list_folder` never
  asks for a recursive tree: it reads the root tree of the commit, then the tree of each path
  component, and checks ``truncated`` on every answer (:class:`GitHubTruncatedError` names the URL).
* **Rate limits.** Unauthenticated clients get 60 API calls an hour. A 403 or 429 answer with
  ``x-ratelimit-remaining: 0`` or a rate-limit message raises :class:`GitHubRateLimitError` with
  GitHub's own message and the reset time (``x-ratelimit-reset``, UTC); a short ``retry-after``
  (secondary limits) is waited for and the call repeated. ``GITHUB_TOKEN``, when set, is sent as a
  bearer token to the API host only, and never printed.
* **Transient faults.** 5xx answers, time-outs and dropped connections are retried with
  exponential back-off; other 4xx answers (a wrong repository or commit: 404) fail at once.

The API base URL is configurable (``probe.urls.api_url``: GitHub Enterprise, mirrors, tests), as is
the raw-file base (``probe.urls.raw_url``) used by :func:`raw_file_url`.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_RAW_URL = "https://raw.githubusercontent.com"
API_VERSION = "2022-11-28"
#: Longest ``retry-after`` (seconds) that is waited for; a longer one fails with the message.
MAX_RETRY_AFTER = 60.0


class GitHubError(RuntimeError):
    """A GitHub API call failed; the message names the URL and GitHub's answer."""


class GitHubTruncatedError(GitHubError):
    """A tree answer says ``truncated: true``: the listing would be incomplete."""


class GitHubRateLimitError(GitHubError):
    """GitHub refused the call for its rate limit; the message gives GitHub's text and the reset."""


def _reset_text(headers: Mapping[str, str]) -> str:
    reset = headers.get("x-ratelimit-reset") or headers.get("X-RateLimit-Reset")
    if not reset:
        return ""
    try:
        when = datetime.fromtimestamp(int(reset), tz=UTC)
    except (ValueError, OverflowError):
        return ""
    wait = max(0, int(reset) - int(time.time()))
    return f"; the limit resets at {when:%Y-%m-%d %H:%M:%S} UTC (in {wait // 60} min {wait % 60} s)"


def _header(headers: Any, name: str) -> str | None:
    return headers.get(name) if headers is not None else None


def is_rate_limited(status: int, headers: Any, message: str) -> bool:
    """Whether a 403/429 answer is GitHub's rate limit (primary or secondary), not a permission error."""
    if status not in (403, 429):
        return False
    return (status == 429 or _header(headers, "x-ratelimit-remaining") == "0"
            or _header(headers, "retry-after") is not None or "rate limit" in message.lower())


def rate_limit_message(url: str, status: int, headers: Any, message: str, token_used: bool) -> str:
    """The error text for a rate-limited call: GitHub's message, the reset time, what to do."""
    hint = ("the token in GITHUB_TOKEN has used up its limit" if token_used else
            "unauthenticated clients get 60 API calls an hour: set GITHUB_TOKEN to a personal "
            "access token (5,000 calls an hour), or give the images as a list file "
            "(probe.urls.list_file) or a local mirror (probe.urls.mirror)")
    return (f"GitHub rate limit reached for {url} (HTTP {status}): {message or 'no message'}"
            f"{_reset_text(headers or {})}; {hint}")


class GitHubClient:
    """GET JSON from the GitHub REST API with the fault handling of this module's docstring."""

    def __init__(self, api_url: str = DEFAULT_API_URL, token: str | None = None, *,
                 timeout: float = 60.0, retries: int = 4, backoff: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token if token is not None else (os.environ.get("GITHUB_TOKEN") or None)
        self.timeout, self.retries, self.backoff, self._sleep = timeout, max(1, retries), backoff, sleep
        self.calls = 0

    def __repr__(self) -> str:  # never shows the token
        return f"GitHubClient(api_url={self.api_url!r}, token={'set' if self.token else 'unset'})"

    def get(self, path: str) -> Any:
        """GET ``api_url + path`` and return the decoded JSON body."""
        url = self.api_url + path
        headers = {"User-Agent": "tasksim", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last = ""
        for attempt in range(1, self.retries + 1):
            self.calls += 1
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                            timeout=self.timeout) as resp:
                    body = resp.read()
                    length = resp.headers.get("Content-Length")
                    if length is not None and len(body) != int(length):
                        raise ConnectionError(f"answer cut short: {len(body)} of {length} bytes")
                try:
                    return json.loads(body)
                except json.JSONDecodeError as err:
                    raise ConnectionError(f"answer is not complete JSON ({err})") from err
            except urllib.error.HTTPError as err:
                message = _error_message(err)
                if is_rate_limited(err.code, err.headers, message):
                    retry_after = _header(err.headers, "retry-after")
                    if (retry_after and retry_after.isdigit() and float(retry_after) <= MAX_RETRY_AFTER
                            and attempt < self.retries):
                        log.warning("GitHub asks to retry %s after %s s (HTTP %d)", url, retry_after, err.code)
                        self._sleep(float(retry_after))
                        continue
                    raise GitHubRateLimitError(rate_limit_message(url, err.code, err.headers, message,
                                                                  bool(self.token))) from None
                if err.code < 500:
                    what = {401: "the token in GITHUB_TOKEN was refused",
                            404: "no such repository, commit or tree (or a private repository "
                                 "without a token)"}.get(err.code, "request refused")
                    raise GitHubError(f"GitHub API call {url} failed with HTTP {err.code}: {what}"
                                      f"{': ' + message if message else ''}") from None
                last = f"HTTP {err.code} {message}".strip()
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
                last = str(getattr(err, "reason", None) or err)
            if attempt < self.retries:
                wait = self.backoff * 2 ** (attempt - 1)
                log.warning("GitHub API call %s failed (%s), attempt %d/%d; retrying in %.1f s",
                            url, last, attempt, self.retries, wait)
                self._sleep(wait)
        raise GitHubError(f"GitHub API call {url} failed after {self.retries} attempts: {last}")

    def tree(self, repository: str, sha: str) -> list[dict[str, Any]]:
        """Entries of one tree (never recursive); fails if GitHub marks the answer truncated."""
        path = f"/repos/{repository}/git/trees/{urllib.parse.quote(sha, safe='')}"
        answer = self.get(path)
        if not isinstance(answer, dict) or not isinstance(answer.get("tree"), list):
            raise GitHubError(f"GitHub API call {self.api_url + path} did not return a tree")
        if answer.get("truncated"):
            raise GitHubTruncatedError(
                f"GitHub truncated the tree answer of {self.api_url + path} (over 100,000 entries or "
                f"7 MB): the listing would be incomplete; list a deeper folder, or give the images "
                f"as a list file (probe.urls.list_file)")
        return answer["tree"]


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        body = err.read().decode("utf-8", "replace")
    except Exception:  # a body that cannot be read is no reason to lose the status
        return ""
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (json.JSONDecodeError, AttributeError):
        return body.strip()[:200]


def list_folder(repository: str, commit: str, folder: str, *, client: GitHubClient | None = None,
                suffixes: Sequence[str] | None = None) -> list[str]:
    """Sorted names of the files (blobs) directly in ``folder`` of ``repository`` at ``commit``.

    One API call for the commit's root tree plus one per path component of ``folder``; every
    answer is checked for truncation. ``suffixes`` (lower case, with the dot) filters the names.
    """
    client = client or GitHubClient()
    entries = client.tree(repository, commit)
    walked: list[str] = []
    for part in [p for p in folder.strip("/").split("/") if p]:
        match = [e for e in entries if e.get("path") == part and e.get("type") == "tree"]
        if not match:
            where = "/".join(walked) or "the root"
            raise GitHubError(f"{repository}@{commit}: no folder {part!r} in {where} "
                              f"(folders there: {sorted(e['path'] for e in entries if e.get('type') == 'tree')[:20]})")
        walked.append(part)
        entries = client.tree(repository, match[0]["sha"])
    names = [e["path"] for e in entries if e.get("type") == "blob"]
    if suffixes:
        names = [n for n in names if n.lower().endswith(tuple(suffixes))]
    return sorted(names)


def raw_file_url(repository: str, commit: str, path: str, raw_url: str = DEFAULT_RAW_URL) -> str:
    """Raw download URL of a file of ``repository`` at ``commit`` (``raw_url`` base configurable)."""
    quoted = "/".join(urllib.parse.quote(p) for p in path.strip("/").split("/"))
    return f"{raw_url.rstrip('/')}/{repository}/{commit}/{quoted}"


__all__ = ["DEFAULT_API_URL", "DEFAULT_RAW_URL", "GitHubClient", "GitHubError", "GitHubRateLimitError",
           "GitHubTruncatedError", "is_rate_limited", "list_folder", "raw_file_url", "rate_limit_message"]
