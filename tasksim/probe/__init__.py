"""Probe image sets: choose images once, freeze them into an HDF5 probe file.

Sources (``probe.source`` in the config):

* ``folder``: every image under a folder (recursively, sorted), or the files of a list file in
  its order;
* ``urls``: a list file of URLs, or a GitHub repository folder pinned to a commit (default: the
  public Taskonomy sample building ``alexsax/taskonomy-sample-model-1``, folder ``rgb/``); a local
  ``mirror`` directory with the same file names replaces the network;
* ``generated``: seeded procedural indoor scenes of :mod:`tasksim.scenes` (the offline demo).

Where a source has more candidates than ``n_images``, the choice is deterministic: the sorted
candidates are sampled without replacement by a ``numpy`` generator seeded with ``probe.seed``,
and kept in sorted order. The frozen file (layout: docs/data-layout.md) holds uint8 images after
centre crop and resize, their ids, the source and a content hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from tasksim.download import fetch, resolve
from tasksim.io import atomic_path, open_h5, read_str, sha256_file, str_dataset
from tasksim.probe.github import DEFAULT_API_URL, DEFAULT_RAW_URL, GitHubClient, list_folder, raw_file_url
from tasksim.probe.preprocess import crop_and_resize

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ProbeImageError(ValueError):
    """An image of the probe set cannot be read; the message names the file."""


# --------------------------------------------------------------------------- choosing

def choose(candidates: Sequence[str], n: int, seed: int) -> list[str]:
    """Deterministic choice of ``n`` of the sorted ``candidates`` (all of them if fewer)."""
    ordered = sorted(candidates)
    if len(ordered) <= n:
        return ordered
    idx = np.sort(np.random.default_rng(seed).choice(len(ordered), size=n, replace=False))
    return [ordered[i] for i in idx]


def read_list_file(path: str | os.PathLike[str]) -> list[str]:
    """Non-empty, non-comment lines of a list file."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"probe list file not found: {path}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def folder_images(folder: str | os.PathLike[str], list_file: str | None = None) -> list[Path]:
    """Image files of a folder: from ``list_file`` (relative names, in order) or all, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"probe folder not found: {root}")
    if list_file:
        paths = [root / name for name in read_list_file(list_file)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} files of probe list {list_file} are missing, e.g. {missing[:3]}")
        return paths
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under probe folder {root}")
    return paths


def github_listing(repository: str, commit: str, folder: str, api_url: str = DEFAULT_API_URL,
                   client: GitHubClient | None = None) -> list[str]:
    """Image file names directly in ``folder`` of a GitHub repository at ``commit``.

    Walks the folder's own trees (never a recursive tree, which GitHub truncates at 100,000
    entries) and fails naming the URL if any answer is truncated: see :mod:`tasksim.probe.github`.
    """
    return list_folder(repository, commit, folder, client=client or GitHubClient(api_url),
                       suffixes=IMAGE_SUFFIXES)


def raw_url(repository: str, commit: str, folder: str, name: str, base: str = DEFAULT_RAW_URL) -> str:
    """Raw download URL of a file of a GitHub repository at a commit."""
    return raw_file_url(repository, commit, f"{folder.strip('/')}/{name}", base)


def read_url_list(path: str | os.PathLike[str]) -> list[tuple[str, str | None]]:
    """Entries of a URL list file: ``URL`` or ``URL SHA256`` per line (as :func:`write_url_list` writes)."""
    out: list[tuple[str, str | None]] = []
    for lineno, line in enumerate(read_list_file(path), 1):
        parts = line.split()
        if len(parts) > 2 or (len(parts) == 2 and not _is_sha256(parts[1])):
            raise ValueError(f"probe list file {path}, entry {lineno}: expected 'URL' or 'URL SHA256', "
                             f"got {line!r}")
        out.append((parts[0], parts[1].lower() if len(parts) == 2 else None))
    return out


def write_url_list(path: str | os.PathLike[str], entries: Sequence[tuple[str, str]], header: str) -> None:
    """Write the chosen images as a list file that ``probe.source: urls`` takes back (atomically)."""
    lines = [f"# {ln}" for ln in header.splitlines()] + [f"{u} {h}" for u, h in entries]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def check_count(found: int, requested: int, where: str, allow_fewer: bool) -> None:
    """Fail when a source holds fewer images than ``probe.n_images`` asks (unless allowed, and never below 2)."""
    if found < 2:
        raise ValueError(f"probe source {where} yields {found} image(s); a probe set needs at least 2 "
                         f"(probe.n_images = {requested})")
    if found < requested:
        if not allow_fewer:
            raise ValueError(f"probe source {where} holds {found} images but probe.n_images asks for "
                             f"{requested}: add images, lower probe.n_images, or set "
                             f"probe.allow_fewer: true to use the {found} there are")
        log.warning("probe source %s holds %d images, fewer than probe.n_images = %d: using %d "
                    "(probe.allow_fewer is true)", where, found, requested, found)


# --------------------------------------------------------------------------- reading

def load_image(path: str | os.PathLike[str], resolution: int) -> np.ndarray:
    """Read one image file and apply centre crop + resize; errors name the file."""
    try:
        with Image.open(path) as im:
            im.load()
            # as a viewer shows it: phone JPEGs store the sensor's orientation in EXIF
            return crop_and_resize(ImageOps.exif_transpose(im), resolution)
    except FileNotFoundError:
        raise ProbeImageError(f"probe image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ProbeImageError(f"cannot read probe image {path}: {err}") from err


def write_probe(path: str | os.PathLike[str], ids: Sequence[str], images: Iterable[np.ndarray],
                n: int, resolution: int, source: str, extra: Mapping[str, Any] | None = None,
                sources: Sequence[str] | None = None) -> str:
    """Stream ``n`` images into a probe file (atomically); return its content hash.

    ``sources`` (optional, one per image) records where each image came from (its URL).
    """
    h = hashlib.sha256()
    with atomic_path(path, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as f:
            ds = f.create_dataset("images", shape=(n, resolution, resolution, 3), dtype=np.uint8,
                                  chunks=(1, resolution, resolution, 3), compression="gzip",
                                  compression_opts=4)
            count = 0
            for row, (img_id, img) in enumerate(zip(ids, images, strict=True)):
                if img.shape != (resolution, resolution, 3) or img.dtype != np.uint8:
                    raise ValueError(f"probe image {img_id}: shape {img.shape} {img.dtype}, "
                                     f"expected ({resolution}, {resolution}, 3) uint8")
                ds[row] = img
                h.update(img_id.encode("utf-8") + b"\0")
                h.update(np.ascontiguousarray(img).tobytes())
                count += 1
            if count != n:
                raise ValueError(f"probe set has {count} images, expected {n}")
            str_dataset(f, "ids", list(ids))
            if sources is not None:
                str_dataset(f, "sources", list(sources))
            digest = h.hexdigest()
            f.attrs.update({"source": source, "content_sha256": digest, "resolution": resolution,
                            "n_images": n, **dict(extra or {})})
    return digest


def read_probe(path: str | os.PathLike[str], locking: bool | None = None) -> dict[str, Any]:
    """Read a whole probe file: ``images`` [N, S, S, 3] uint8, ``ids``, and its attributes."""
    with open_h5(path, "r", locking) as f:
        return {"images": f["images"][()], "ids": read_str(f["ids"]), **dict(f.attrs)}


def probe_info(path: str | os.PathLike[str], locking: bool | None = None) -> dict[str, Any]:
    """Attributes and ids of a probe file without reading the images."""
    with open_h5(path, "r", locking) as f:
        return {"ids": read_str(f["ids"]), **dict(f.attrs)}


# --------------------------------------------------------------------------- building

def build_probe_set(cfg: Mapping[str, Any], out_path: str | os.PathLike[str],
                    cache_dir: str | os.PathLike[str] | None = None,
                    progress: bool = True, list_path: str | os.PathLike[str] | None = None,
                    client: GitHubClient | None = None) -> str:
    """Freeze the probe set described by ``cfg['probe']`` into ``out_path``; return its hash.

    ``cache_dir`` keeps downloaded images (so an interrupted download resumes). ``list_path``
    receives the chosen images as a list file (URL or path, and SHA-256 of the bytes, per line)
    that ``probe.source: urls`` (``urls.list_file``) takes back, so another machine rebuilds the
    same probe set without listing anything.
    """
    p, res = cfg["probe"], cfg["preprocessing"]["resolution"]
    n, seed, allow_fewer = p["n_images"], p["seed"], bool(p.get("allow_fewer", False))
    if p["source"] == "generated":
        from tasksim.scenes import render_rgb

        images = render_rgb(n, res, seed)
        ids = [f"scene_{i:06d}" for i in range(n)]
        if list_path:
            write_url_list(list_path, [], f"probe set {p['name']}: {n} generated scenes (seed {seed});\n"
                           "rebuilt from probe.source: generated, not from a list")
        return write_probe(out_path, ids, list(images), n, res, f"generated:seed={seed}")
    if p["source"] == "folder":
        fcfg = p["folder"]
        if not fcfg.get("path"):
            raise ValueError("config key probe.folder.path must be set when probe.source is 'folder'")
        root = Path(fcfg["path"])
        paths = folder_images(root, fcfg.get("list_file"))
        where = f"list file {fcfg['list_file']}" if fcfg.get("list_file") else f"folder {root}"
        check_count(len(paths), n, where, allow_fewer)
        if fcfg.get("list_file"):
            paths = paths[:n]
        else:
            chosen = set(choose([str(q.relative_to(root)) for q in paths], n, seed))
            paths = [q for q in paths if str(q.relative_to(root)) in chosen]
        ids = [str(q.relative_to(root)) for q in paths]
        if list_path:
            write_url_list(list_path, [(q.resolve().as_uri(), sha256_file(q)) for q in paths],
                           f"probe set {p['name']}: {len(paths)} images of {where}")
        return write_probe(out_path, ids, _load_all(paths, res, progress), len(paths), res,
                           f"folder:{root}", _count_attrs(n, len(paths)))
    # urls
    ucfg = p["urls"]
    extra: dict[str, Any] = {}
    if ucfg.get("list_file"):
        entries = read_url_list(ucfg["list_file"])
        where = f"list file {ucfg['list_file']}"
        check_count(len(entries), n, where, allow_fewer)
        hashes = dict(entries)
        urls = choose([u for u, _ in entries], n, seed)
        expected = [hashes[u] for u in urls]
        names = [Path(urllib.parse.urlparse(u).path).name for u in urls]
        source = f"urls:{ucfg['list_file']}"
    else:
        mirror = ucfg.get("mirror")
        if mirror:
            listing = sorted(q.name for q in Path(resolve(mirror)).iterdir()
                             if q.suffix.lower() in IMAGE_SUFFIXES)
            where = f"mirror {mirror}"
        else:
            api = ucfg.get("api_url") or DEFAULT_API_URL
            listing = github_listing(ucfg["repository"], ucfg["commit"], ucfg["folder"], api, client)
            where = f"{ucfg['repository']}@{ucfg['commit']}/{ucfg['folder']} (listed by {api})"
            extra["api_url"] = api
        check_count(len(listing), n, where, allow_fewer)
        names = choose(listing, n, seed)
        base = ucfg.get("raw_url") or DEFAULT_RAW_URL
        urls = [resolve(mirror, nm) if mirror else raw_url(ucfg["repository"], ucfg["commit"], ucfg["folder"], nm, base)
                for nm in names]
        expected = [None] * len(urls)
        source = f"urls:github.com/{ucfg['repository']}@{ucfg['commit']}/{ucfg['folder']}"
    ids = names if len(set(names)) == len(names) else [f"{i:06d}_{nm}" for i, nm in enumerate(names)]
    cache = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="tasksim-probe-"))
    local: list[Path] = []
    digests: list[str] = []
    for url, nm, sha in tqdm(list(zip(urls, ids, expected, strict=True)), desc="download probe images",
                             disable=not progress):
        dest = cache / nm
        if dest.exists() and sha is not None and sha256_file(dest) != sha:
            log.warning("cached probe image %s does not match its listed SHA-256: fetched again", dest)
            dest.unlink()
        if not dest.exists():
            fetch(url, dest, sha)
        local.append(dest)
        digests.append(sha256_file(dest))
    if list_path:
        write_url_list(list_path, list(zip(urls, digests, strict=True)),
                       f"probe set {p['name']}: {len(urls)} images chosen from {where}\n"
                       f"(seed {seed}); use as probe.urls.list_file to rebuild the same set")
    extra.update(_count_attrs(n, len(local)))
    return write_probe(out_path, ids, _load_all(local, res, progress), len(local), res, source, extra,
                       sources=urls)


def _count_attrs(requested: int, used: int) -> dict[str, int]:
    """Provenance of a probe set smaller than asked (``probe.allow_fewer``)."""
    return {"n_requested": requested} if used != requested else {}


def _load_all(paths: Sequence[Path], resolution: int, progress: bool) -> Iterable[np.ndarray]:
    for q in tqdm(paths, desc="read probe images", disable=not progress):
        yield load_image(q, resolution)


