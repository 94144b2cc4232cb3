"""The similarity stage's files (docs/data-layout.md: ``R/rdms/``, ``R/attributions/``,
``R/similarity/``): the one module that reads and writes them.

Writers (:func:`write_similarity`, :func:`write_rdms`, :func:`attribution_writer`) write
atomically; :func:`read_similarity`, :func:`read_rdms` and :func:`check_same_probe` are the
readers every later stage uses. The path-in/path-out steps that compute these files are in
:mod:`tasksim.similarity.stage`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasksim.io import atomic_path, check_finite_matrix, open_h5, read_str, str_dataset, versions

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def _json_safe(info: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, np.ndarray):
            continue  # large arrays (e.g. kept RDMs) are stored separately, never as attributes
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def probe_attrs(activation_or_probe: PathLike, locking: bool | None) -> tuple[list[str], str]:
    with open_h5(activation_or_probe, "r", locking) as f:
        sha = str(f.attrs.get("probe_sha256", f.attrs.get("content_sha256", "")))
        return read_str(f["ids"]), sha


def check_same_probe(paths: Sequence[PathLike], locking: bool | None = None) -> tuple[list[str], str]:
    """All files must come from the same probe set in the same row order; returns (ids, sha)."""
    ids0, sha0 = probe_attrs(paths[0], locking)
    for p in paths[1:]:
        ids, sha = probe_attrs(p, locking)
        if sha != sha0 or ids != ids0:
            raise ValueError(f"{p} was computed on probe set {sha[:12]}..., but {paths[0]} on "
                             f"{sha0[:12]}...; re-run the extraction of both on one probe set")
    return ids0, sha0


# --------------------------------------------------------------------------- writing matrices

def write_similarity(h5_path: PathLike, csv_path: PathLike, matrix: np.ndarray, models: Sequence[str],
                     method: str, layer: str, options: Mapping[str, Any], probe_sha256: str,
                     n_images: int, info: Mapping[str, Any] | None = None,
                     per_image: np.ndarray | None = None) -> None:
    """Write one similarity matrix as HDF5 (machine-readable) and CSV (models as header/index).

    A matrix with a NaN or inf entry is refused (:class:`tasksim.io.NonFiniteError` naming the
    files and the model pairs) and nothing is written."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (len(models), len(models)):
        raise ValueError(f"{method} {layer} matrix shape {matrix.shape} does not fit {len(models)} "
                         f"models ({h5_path})")
    check_finite_matrix(matrix, list(models), f"{h5_path} and {csv_path} ({method}, layer {layer})")
    with atomic_path(h5_path, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as f:
            f.create_dataset("similarity", data=matrix)
            str_dataset(f, "models", list(models))
            if per_image is not None:
                f.create_dataset("per_image", data=per_image.astype(np.float32),
                                 chunks=(1, len(models), per_image.shape[2]), compression="gzip")
            f.attrs.update({"method": method, "layer": layer, "probe_sha256": probe_sha256,
                            "n_images": int(n_images),
                            "options": json.dumps(dict(options), sort_keys=True),
                            "info": json.dumps(_json_safe(info or {}), sort_keys=True, default=str),
                            "versions": json.dumps(versions())})
    with atomic_path(csv_path, suffix=".csv") as tmp:
        pd.DataFrame(matrix, index=list(models), columns=list(models)).to_csv(tmp, float_format="%.6f")


@dataclass
class SimilarityFile:
    """Content of ``R/similarity/{method}/{layer}.h5``."""

    matrix: pd.DataFrame
    attrs: dict[str, Any]
    per_image: np.ndarray | None = None

    @property
    def n_images(self) -> int:
        n = self.attrs.get("n_images")
        if n is not None:
            return int(n)
        return int(self.per_image.shape[2]) if self.per_image is not None else 0


def read_similarity(path: PathLike, per_image: bool = False) -> SimilarityFile:
    """Read a similarity HDF5 file (docs/data-layout.md); ``per_image`` also loads ``/per_image``."""
    with open_h5(path) as f:
        models = read_str(f["models"])
        s = np.asarray(f["similarity"][...], dtype=float)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
        cos = np.asarray(f["per_image"][...]) if per_image and "per_image" in f else None
    if isinstance(attrs.get("options"), str):
        try:
            attrs["options"] = json.loads(attrs["options"])
        except json.JSONDecodeError:
            pass
    return SimilarityFile(pd.DataFrame(s, index=models, columns=models), attrs, cos)




def read_rdms(rdm_files: Sequence[PathLike], layer: str, locking: bool | None = None,
              dtype: Any = np.float64) -> list[np.ndarray]:
    """The stored RDM ``/rdms/{layer}`` of each RDM file, in order."""
    out = []
    for p in rdm_files:
        with open_h5(p, "r", locking) as f:
            out.append(np.asarray(f["rdms"][layer][()], dtype=dtype))
    return out


def write_rdms(out: PathLike, ids: Sequence[str], rdms: Mapping[str, np.ndarray],
               attrs: Mapping[str, Any]) -> None:
    """An RDM file: ``/ids``, ``/rdms/{layer}`` (float32) and ``attrs`` (model, normalisation,
    distance, probe hash), atomically."""
    with atomic_path(out, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as g:
            str_dataset(g, "ids", list(ids))
            grp = g.create_group("rdms")
            for layer, r in rdms.items():
                grp.create_dataset(layer, data=np.asarray(r, dtype=np.float32))
            g.attrs.update({**attrs, "versions": json.dumps(versions())})


@contextlib.contextmanager
def attribution_writer(out: PathLike, ids: Sequence[str], kinds: Sequence[str], resolution: int,
                       storage_dtype: str, attrs: Mapping[str, Any]
                       ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Open an attribution file for writing, atomically (nothing is left on failure): yields
    ``(maps, scales)``, per kind the datasets ``/maps/{kind}`` ``[N, S, S]`` (``storage_dtype``)
    and ``/scales/{kind}`` ``[N]`` to fill in batches."""
    n = len(ids)
    with atomic_path(out, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as f:
            str_dataset(f, "ids", list(ids))
            maps_group, scales_group = f.create_group("maps"), f.create_group("scales")
            shape = (n, resolution, resolution)
            maps = {k: maps_group.create_dataset(k, shape=shape, dtype=storage_dtype,
                                                 chunks=(1, resolution, resolution), compression="lzf")
                    for k in kinds}
            scales = {k: scales_group.create_dataset(k, shape=(n,), dtype=np.float32) for k in kinds}
            yield maps, scales
            f.attrs.update({**attrs, "storage_dtype": storage_dtype, "versions": json.dumps(versions())})


def attribution_maps_of(path: PathLike, kind: str, locking: bool | None = None) -> Any:
    """Open an attribution file and return ``(handle, dataset /maps/{kind})``; close the handle."""
    f = open_h5(path, "r", locking)
    return f, f["maps"][kind]
