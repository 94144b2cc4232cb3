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
import json
import logging
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from tasksim.download import fetch, resolve
from tasksim.io import atomic_path, open_h5, read_str, str_dataset
from tasksim.preprocess import crop_and_resize

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


def github_listing(repository: str, commit: str, folder: str, timeout: float = 60.0) -> list[str]:
    """File names in ``folder`` of a GitHub repository at ``commit`` (one API call, recursive tree)."""
    url = f"https://api.github.com/repos/{repository}/git/trees/{commit}?recursive=1"
    req = urllib.request.Request(url, headers={"User-Agent": "tasksim", "Accept": "application/vnd.github+json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        tree = json.load(resp)
    prefix = folder.strip("/") + "/"
    return sorted(e["path"][len(prefix):] for e in tree.get("tree", [])
                  if e.get("type") == "blob" and e["path"].startswith(prefix)
                  and "/" not in e["path"][len(prefix):] and e["path"].lower().endswith(IMAGE_SUFFIXES))


def raw_url(repository: str, commit: str, folder: str, name: str) -> str:
    """Raw download URL of a file of a GitHub repository at a commit."""
    return f"https://raw.githubusercontent.com/{repository}/{commit}/{folder.strip('/')}/{urllib.parse.quote(name)}"


# --------------------------------------------------------------------------- reading

def load_image(path: str | os.PathLike[str], resolution: int) -> np.ndarray:
    """Read one image file and apply centre crop + resize; errors name the file."""
    try:
        with Image.open(path) as im:
            im.load()
            return crop_and_resize(im, resolution)
    except FileNotFoundError:
        raise ProbeImageError(f"probe image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ProbeImageError(f"cannot read probe image {path}: {err}") from err


def content_sha256(ids: Sequence[str], images: Iterable[np.ndarray]) -> str:
    """SHA-256 over ids and image bytes in row order: the identity of a probe set."""
    h = hashlib.sha256()
    for i, img in zip(ids, images, strict=True):
        h.update(i.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
    return h.hexdigest()


def write_probe(path: str | os.PathLike[str], ids: Sequence[str], images: Iterable[np.ndarray],
                n: int, resolution: int, source: str, extra: Mapping[str, Any] | None = None) -> str:
    """Stream ``n`` images into a probe file (atomically); return its content hash."""
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
                    progress: bool = True) -> str:
    """Freeze the probe set described by ``cfg['probe']`` into ``out_path``; return its hash.

    ``cache_dir`` keeps downloaded images (so an interrupted download resumes).
    """
    p, res = cfg["probe"], cfg["preprocessing"]["resolution"]
    n, seed = p["n_images"], p["seed"]
    if p["source"] == "generated":
        from tasksim.scenes import render_rgb

        images = render_rgb(n, res, seed)
        ids = [f"scene_{i:06d}" for i in range(n)]
        return write_probe(out_path, ids, list(images), n, res, f"generated:seed={seed}")
    if p["source"] == "folder":
        fcfg = p["folder"]
        if not fcfg.get("path"):
            raise ValueError("config key probe.folder.path must be set when probe.source is 'folder'")
        root = Path(fcfg["path"])
        paths = folder_images(root, fcfg.get("list_file"))
        if not fcfg.get("list_file"):
            chosen = set(choose([str(q.relative_to(root)) for q in paths], n, seed))
            paths = [q for q in paths if str(q.relative_to(root)) in chosen]
        paths = paths[:n]
        ids = [str(q.relative_to(root)) for q in paths]
        return write_probe(out_path, ids, _load_all(paths, res, progress), len(paths), res,
                           f"folder:{root}")
    # urls
    ucfg = p["urls"]
    if ucfg.get("list_file"):
        urls = choose(read_list_file(ucfg["list_file"]), n, seed)
        names = [Path(urllib.parse.urlparse(u).path).name for u in urls]
        source = f"urls:{ucfg['list_file']}"
    else:
        mirror = ucfg.get("mirror")
        if mirror:
            listing = sorted(q.name for q in Path(resolve(mirror)).iterdir()
                             if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            listing = github_listing(ucfg["repository"], ucfg["commit"], ucfg["folder"])
        names = choose(listing, n, seed)
        urls = [resolve(mirror, nm) if mirror else raw_url(ucfg["repository"], ucfg["commit"], ucfg["folder"], nm)
                for nm in names]
        source = f"urls:github.com/{ucfg['repository']}@{ucfg['commit']}/{ucfg['folder']}"
    if len(set(names)) != len(names):
        names = [f"{i:06d}_{nm}" for i, nm in enumerate(names)]
    cache = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="tasksim-probe-"))
    local: list[Path] = []
    for url, nm in tqdm(list(zip(urls, names)), desc="download probe images", disable=not progress):
        dest = cache / nm
        if not dest.exists():
            fetch(url, dest, None)
        local.append(dest)
    return write_probe(out_path, names, _load_all(local, res, progress), len(local), res, source)


def _load_all(paths: Sequence[Path], resolution: int, progress: bool) -> Iterable[np.ndarray]:
    for q in tqdm(paths, desc="read probe images", disable=not progress):
        yield load_image(q, resolution)


