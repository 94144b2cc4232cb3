"""A local stand-in for GitHub on 127.0.0.1: the REST API's git trees, raw files, and faults.

It answers like the real services where tasksim depends on them:

* ``GET /api/repos/{owner}/{repo}/git/trees/{sha}``: one tree (``sha`` = the commit for the root,
  else a folder's tree sha), with ``truncated: false``; with ``?recursive=1`` the whole tree in
  path order, cut at ``recursive_limit`` entries and marked ``truncated: true`` (GitHub's limit is
  100,000 entries). ``x-ratelimit-*`` headers on every answer.
* ``GET /raw/{owner}/{repo}/{commit}/{path}``: the file's bytes (raw.githubusercontent.com).
* ``GET /files/{path}``: any other static file (weights, ground-truth pickles).

Faults are queued per request path (without the query) and used up one per request:
``"500"`` (an internal error), ``"404"``, ``"cut"`` (announces the full Content-Length, sends a
tenth), ``"wrong"`` (other bytes than the file's), ``"ratelimit"`` (403 with
``x-ratelimit-remaining: 0``, GitHub's message and a reset time), ``"retry_after"`` (429 with
``retry-after: 1``). ``always_fail`` maps a path to a fault returned on every request.

The server runs in a daemon thread, is bounded in time (it shuts itself down after
``max_seconds``), and is stopped by the test (context manager).
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import time
import urllib.parse
from collections import defaultdict

import numpy as np

#: Folders of the Taskonomy sample building, in path order (rgb comes late).
SAMPLE_FOLDERS = ["class_object", "class_scene", "depth_euclidean", "depth_zbuffer", "edge_occlusion",
                  "edge_texture", "keypoints2d", "keypoints3d", "nonfixated_matches", "normal", "points",
                  "principal_curvature", "reshading", "rgb", "room_layout", "segment_semantic",
                  "segment_unsup25d", "segment_unsup2d", "vanishing_point"]


def sample_names(n: int, domain: str = "rgb") -> list[str]:
    """File names in the sample building's pattern ``point_P_view_V_domain_<domain>.png``."""
    return [f"point_{i // 4}_view_{i % 4}_domain_{domain}.png" for i in range(n)]


def label_bytes(task: str, image_name: str, size: int = 512) -> tuple[str, str, bytes]:
    """``(folder, file name, bytes)`` of a seeded label of ``task`` for the sample-building view
    ``image_name``, encoded as the building stores it (16-bit depth PNG, 8-bit RGB normals and
    curvature, gray intensities, class and segment id maps, class scores as ``.npy``)."""
    from PIL import Image

    from tasksim.targets.taskonomy import label_file_name, sample_label

    spec = sample_label(task)
    rng = np.random.default_rng(int(hashlib.sha256(f"{task}/{image_name}".encode()).hexdigest()[:8], 16))
    name = label_file_name(image_name, task)
    yy, xx = np.mgrid[0:size, 0:size] / size
    smooth = (xx * rng.uniform(0.2, 1) + yy * rng.uniform(0.2, 1)) / 2
    if spec.decoder == "softmax":
        buf = io.BytesIO()
        np.save(buf, rng.random(spec.n_classes).astype(np.float32))
        return spec.folder, name, buf.getvalue()
    if spec.decoder == "depth":
        arr = (smooth * 20000 + 1000).astype(np.uint16)
        arr[:4, :4] = 65535
        img = Image.fromarray(arr)
    elif spec.decoder in ("normal", "curvature"):
        arr = np.stack([smooth, 1 - smooth, np.full_like(smooth, 0.5)], axis=-1) * 255
        img = Image.fromarray(arr.astype(np.uint8))
    elif spec.decoder == "intensity":
        img = Image.fromarray((smooth * 255).astype(np.uint8))
    elif spec.decoder in ("class_map", "segments"):
        top = spec.n_classes or 8
        img = Image.fromarray((smooth * (top - 1)).astype(np.uint8))
    else:
        raise ValueError(f"no stand-in label for {task} (decoder {spec.decoder})")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return spec.folder, name, buf.getvalue()


def png_bytes(name: str, size: int = 512) -> bytes:
    """A seeded RGB PNG (smooth gradient plus noise) of the sample building's image size."""
    from PIL import Image

    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([xx, yy, (xx + yy) / 2], axis=-1) * rng.uniform(60, 200, 3)
    img = np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _tree_sha(path: str) -> str:
    return hashlib.sha1(f"tree:{path}".encode()).hexdigest()


class FakeGitHub:
    """The stand-in server; ``url`` is its base (``http://127.0.0.1:PORT``)."""

    def __init__(self, max_seconds: float = 900.0, recursive_limit: int = 100_000) -> None:
        self.repos: dict[tuple[str, str], dict[str, dict[str, object]]] = {}
        self.files: dict[str, bytes | object] = {}
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.always_fail: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.recursive_limit = recursive_limit
        self.max_seconds = max_seconds
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ content
    def add_repo(self, repository: str, commit: str, folders: dict[str, dict[str, object]]) -> None:
        """``folders``: folder path -> {file name: bytes, or a zero-argument callable giving bytes}."""
        self.repos[(repository, commit)] = folders

    def add_file(self, path: str, data: bytes) -> None:
        self.files[path.lstrip("/")] = data

    def fault(self, path: str, *kinds: str) -> None:
        self.faults[path].extend(kinds)

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def calls(self, prefix: str) -> int:
        return sum(1 for p, _ in self.requests if p.startswith(prefix))

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FakeGitHub:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server API)
                owner._handle(self)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self._timer = threading.Timer(self.max_seconds, self._httpd.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    # ------------------------------------------------------------------ answers
    def _next_fault(self, path: str) -> str | None:
        with self._lock:
            if path in self.always_fail:
                return self.always_fail[path]
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def _send(self, h, status: int, body: bytes, headers: dict[str, str] | None = None,
              length: int | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        try:
            h.wfile.write(body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if length is not None and length != len(body):
            h.close_connection = True

    def _handle(self, h) -> None:
        parsed = urllib.parse.urlparse(h.path)
        path = urllib.parse.unquote(parsed.path)
        with self._lock:
            self.requests.append((path, dict(h.headers)))
        reset = str(int(time.time()) + 1800)
        limits = {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "59", "x-ratelimit-reset": reset,
                  "Content-Type": "application/json; charset=utf-8"}
        fault = self._next_fault(path)
        if fault == "500":
            return self._send(h, 500, b'{"message": "Server Error"}', limits)
        if fault == "404":
            return self._send(h, 404, b'{"message": "Not Found"}', limits)
        if fault == "ratelimit":
            msg = {"message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: "
                              "Authenticated requests get a higher rate limit.)",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
            return self._send(h, 403, json.dumps(msg).encode(), {**limits, "x-ratelimit-remaining": "0"})
        if fault == "retry_after":
            return self._send(h, 429, b'{"message": "You have exceeded a secondary rate limit."}',
                              {**limits, "retry-after": "1"})
        try:
            status, body, headers = self._content(path, parse_qs=urllib.parse.parse_qs(parsed.query))
        except KeyError:
            return self._send(h, 404, b'{"message": "Not Found"}', limits)
        headers = {**limits, **headers}
        if fault == "wrong":
            body = hashlib.sha256(body).digest() + body[32:]
        if fault == "cut":
            return self._send(h, status, body[: max(1, len(body) // 10)], headers, length=len(body))
        return self._send(h, status, body, headers)

    def _content(self, path: str, parse_qs) -> tuple[int, bytes, dict[str, str]]:
        if path.startswith("/api/repos/"):
            parts = path[len("/api/repos/"):].split("/")
            if len(parts) != 5 or parts[2:4] != ["git", "trees"]:
                raise KeyError(path)
            repository, sha = f"{parts[0]}/{parts[1]}", parts[4]
            return 200, json.dumps(self._tree(repository, sha, "recursive" in parse_qs)).encode(), {}
        if path.startswith("/raw/"):
            owner, repo, commit, rest = path[len("/raw/"):].split("/", 3)
            folder, _, name = rest.rpartition("/")
            data = self.repos[(f"{owner}/{repo}", commit)][folder][name]
            data = data() if callable(data) else data
            return 200, data, {"Content-Type": "application/octet-stream"}
        if path.startswith("/files/"):
            data = self.files[path[len("/files/"):]]
            return 200, data() if callable(data) else data, {"Content-Type": "application/octet-stream"}
        raise KeyError(path)

    def _tree(self, repository: str, sha: str, recursive: bool) -> dict:
        commits = {c: f for (r, c), f in self.repos.items() if r == repository}
        if not commits:
            raise KeyError(repository)
        # folder trees are addressed by sha; the root by the commit
        for commit, folders in commits.items():
            top = sorted({f.split("/")[0] for f in folders})
            if sha == commit:
                if recursive:
                    entries = []
                    for folder in sorted(folders):
                        entries.append({"path": folder, "type": "tree", "sha": _tree_sha(folder), "mode": "040000"})
                        entries += [{"path": f"{folder}/{n}", "type": "blob", "sha": _tree_sha(f"{folder}/{n}"),
                                     "mode": "100644", "size": 0} for n in sorted(folders[folder])]
                    cut = len(entries) > self.recursive_limit
                    return {"sha": sha, "tree": entries[: self.recursive_limit], "truncated": cut}
                entries = [{"path": t, "type": "tree", "sha": _tree_sha(t), "mode": "040000"} for t in top]
                entries.append({"path": "README.md", "type": "blob", "sha": _tree_sha("README.md"),
                                "mode": "100644", "size": 10})
                return {"sha": sha, "tree": entries, "truncated": False}
            for folder, names in folders.items():
                parts = folder.split("/")
                for depth in range(1, len(parts) + 1):
                    prefix = "/".join(parts[:depth])
                    if _tree_sha(prefix) != sha:
                        continue
                    if depth == len(parts):
                        entries = [{"path": n, "type": "blob", "sha": _tree_sha(f"{folder}/{n}"),
                                    "mode": "100644", "size": 0} for n in sorted(names)]
                    else:
                        subs = sorted({f.split("/")[depth] for f in folders if f.startswith(prefix + "/")})
                        entries = [{"path": s, "type": "tree", "sha": _tree_sha(f"{prefix}/{s}"),
                                    "mode": "040000"} for s in subs]
                    return {"sha": sha, "tree": entries, "truncated": False}
        raise KeyError(sha)
