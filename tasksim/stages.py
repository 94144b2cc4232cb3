"""File-level pipeline stages of the similarity engines (RDM files, attribution files, matrices).

Each function reads the files of docs/data-layout.md, calls the pure functions of
:mod:`tasksim.similarity` / :mod:`tasksim.attribution`, and writes its output atomically. The rule
scripts in ``scripts/`` only unpack Snakemake's objects and call these.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from tasksim.attribution import attribution_maps, to_float16
from tasksim.extract import versions
from tasksim.io import NonFiniteError, atomic_path, check_finite_matrix, open_h5, prefixed_errors, read_str, str_dataset
from tasksim.preprocess import network_input
from tasksim.similarity import rsa as rsa_mod
from tasksim.similarity.registry import compute_similarity, get_method, hdf5_layer
from tasksim.zoo import ModelSpec

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


def _probe_attrs(activation_or_probe: PathLike, locking: bool | None) -> tuple[list[str], str]:
    with open_h5(activation_or_probe, "r", locking) as f:
        sha = str(f.attrs.get("probe_sha256", f.attrs.get("content_sha256", "")))
        return read_str(f["ids"]), sha


def check_same_probe(paths: Sequence[PathLike], locking: bool | None = None) -> tuple[list[str], str]:
    """All files must come from the same probe set in the same row order; returns (ids, sha)."""
    ids0, sha0 = _probe_attrs(paths[0], locking)
    for p in paths[1:]:
        ids, sha = _probe_attrs(p, locking)
        if sha != sha0 or ids != ids0:
            raise ValueError(f"{p} was computed on probe set {sha[:12]}..., but {paths[0]} on "
                             f"{sha0[:12]}...; re-run the extraction of both on one probe set")
    return ids0, sha0


_naming = prefixed_errors


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


def read_similarity(h5_path: PathLike) -> pd.DataFrame:
    """A similarity matrix written by :func:`write_similarity` as a labelled DataFrame."""
    with open_h5(h5_path, "r") as f:
        models = read_str(f["models"])
        return pd.DataFrame(f["similarity"][()], index=models, columns=models)


# --------------------------------------------------------------------------- RSA

def rdm_file(activations: PathLike, out: PathLike, layers: Sequence[str], normalization: str,
             distance: str, block_columns: int | None = None, locking: bool | None = None) -> None:
    """RDMs of every ``layers`` entry of one model's activation file, into one RDM file.

    Each layer is read whole in its stored dtype (float16 by default: at most ~0.5 GB per layer
    at 500 images) and streamed through the Gram accumulation in column blocks; one layer at a
    time is in memory.
    """
    ids, sha = _probe_attrs(activations, locking)
    with open_h5(activations, "r", locking) as f:
        model = str(f.attrs.get("model", Path(activations).stem))
        available = set(f["layers"])
    missing = [layer for layer in layers if layer not in available]
    if missing:
        raise KeyError(f"activation file {activations} has no layers {missing}; it has {sorted(available)}")
    with atomic_path(out, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as g:
            str_dataset(g, "ids", ids)
            grp = g.create_group("rdms")
            for layer in tqdm(layers, desc=f"RDMs {model}", unit="layer"):
                x = hdf5_layer(activations, layer, locking)()
                with _naming(f"RDM of model {model}, layer {layer} ({activations})"):
                    r = rsa_mod.rdm(x, normalization, distance, block_columns)  # type: ignore[arg-type]
                del x
                grp.create_dataset(layer, data=r.astype(np.float32))
            g.attrs.update({"model": model, "normalization": normalization, "distance": distance,
                            "probe_sha256": sha, "versions": json.dumps(versions())})


def rsa_similarity_file(rdm_files: Sequence[PathLike], models: Sequence[str], layer: str,
                        h5_out: PathLike, csv_out: PathLike, options: Mapping[str, Any],
                        locking: bool | None = None, method: str = "rsa") -> np.ndarray:
    """The matrix of an RDM-reading method (RSA) on one layer, from the models' RDM files: the
    method's registered second step (``from_stored``) with the analysis's options."""
    import inspect

    spec = get_method(method)
    assert spec.from_stored is not None
    ids, sha = check_same_probe(rdm_files, locking)
    rdms = []
    for p in rdm_files:
        with open_h5(p, "r", locking) as f:
            rdms.append(f["rdms"][layer][()].astype(np.float64))
    params = inspect.signature(spec.from_stored).parameters
    with _naming(f"{method} of layer {layer} (models {', '.join(models)})"):
        matrix = spec.from_stored(rdms, **{k: v for k, v in options.items() if k in params})
    write_similarity(h5_out, csv_out, matrix, models, method, layer, options, sha, len(ids))
    return matrix


# --------------------------------------------------------------------------- CKA / SVCCA

def feature_similarity_file(method: str, activation_files: Sequence[PathLike], models: Sequence[str],
                            layer: str, options: Mapping[str, Any], h5_out: PathLike, csv_out: PathLike,
                            locking: bool | None = None) -> np.ndarray:
    """A registered feature method (``svcca``, ``pwcca``, ``cka_linear``, ``cka_rbf``) on one layer."""
    ids, sha = check_same_probe(activation_files, locking)
    sources = [hdf5_layer(p, layer, locking) for p in activation_files]
    with _naming(f"{method} on layer {layer}"):
        matrix, info = compute_similarity(method, sources, names=list(models), **options)
    for key in ("capped", "cap_messages", "warnings"):
        if info.get(key):
            log.warning("%s %s: %s = %s", method, layer, key, info[key])
    write_similarity(h5_out, csv_out, matrix, models, method, layer, options, sha, len(ids), info=info)
    return matrix


# --------------------------------------------------------------------------- attribution

def attribution_file(spec: ModelSpec, model: torch.nn.Module, probe: PathLike, out: PathLike,
                     kinds: Sequence[str], epsilon: float, batch_size: int,
                     storage_dtype: str = "float16", locking: bool | None = None) -> None:
    """Attribution maps of one model for every probe image (batched autograd) into one file.

    ``/maps/{kind}`` holds ``[N, S, S]`` maps; with float16 storage each image's map is scaled
    to max |value| 1 and the factor kept in ``/scales/{kind}`` (cosines are scale-invariant).
    """
    device = next(iter(model.parameters())).device
    with open_h5(probe, "r", locking) as pf:
        n = int(pf["images"].shape[0])
        res = int(pf.attrs["resolution"])
        ids = read_str(pf["ids"])
        sha = str(pf.attrs["content_sha256"])
        with atomic_path(out, suffix=".h5") as tmp:
            with open_h5(tmp, "w") as f:
                str_dataset(f, "ids", ids)
                maps = f.create_group("maps")
                scales = f.create_group("scales")
                dsets = {k: maps.create_dataset(k, shape=(n, res, res), dtype=storage_dtype,
                                                chunks=(1, res, res), compression="lzf")
                         for k in kinds}
                sc = {k: scales.create_dataset(k, shape=(n,), dtype=np.float32) for k in kinds}
                for lo in tqdm(range(0, n, batch_size), desc=f"attribution {spec.name}", unit="batch"):
                    hi = min(n, lo + batch_size)
                    x = network_input(pf["images"][lo:hi], spec.low_saturation, device)
                    out_maps = attribution_maps(model, x, list(kinds), epsilon)
                    for k, v in out_maps.items():
                        if not bool(torch.isfinite(v).all()):
                            raise NonFiniteError(f"model {spec.name}: {k} attribution maps of probe rows "
                                                 f"{lo}..{hi - 1} are not finite (NaN/inf gradients)")
                        if storage_dtype == "float16":
                            stored, scale = to_float16(v)
                        else:
                            stored, scale = v.cpu().numpy().astype(np.float32), np.ones(hi - lo, np.float32)
                        dsets[k][lo:hi] = stored
                        sc[k][lo:hi] = scale
                f.attrs.update({"model": spec.name, "epsilon": epsilon, "probe_sha256": sha,
                                "low_saturation": spec.low_saturation, "storage_dtype": storage_dtype,
                                "target": "sum of all encoder output units",
                                "versions": json.dumps(versions())})


def attribution_similarity_file(attribution_files: Sequence[PathLike], models: Sequence[str], kind: str,
                                method: str, h5_out: PathLike, csv_out: PathLike,
                                options: Mapping[str, Any], locking: bool | None = None) -> np.ndarray:
    """Mean per-image cosine of the models' ``kind`` maps (per-image cosines kept for bootstrap)."""
    ids, sha = check_same_probe(attribution_files, locking)
    handles = [open_h5(p, "r", locking) for p in attribution_files]
    try:
        matrix, info = compute_similarity(method, [h["maps"][kind] for h in handles], names=list(models))
    finally:
        for h in handles:
            h.close()
    per_image = info.pop("per_image")
    write_similarity(h5_out, csv_out, matrix, models, method, "input", options, sha, len(ids),
                     info={"kind": kind}, per_image=per_image)
    return matrix
