"""Path-in/path-out steps of the similarity stage: RDM files, attribution maps, matrices.

Each step reads its inputs, runs the registered method of :mod:`tasksim.similarity.registry` (the
same function library users call, with the analysis's options), and writes through
:mod:`tasksim.similarity.files`. The rule scripts in ``workflow/scripts/`` only unpack
Snakemake's objects and call these.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from tasksim.io import NonFiniteError, open_h5, prefixed_errors, read_str
from tasksim.similarity.files import (
    attribution_maps_of,
    attribution_writer,
    check_same_probe,
    probe_attrs,
    read_rdms,
    write_rdms,
    write_similarity,
)
from tasksim.similarity.registry import compute_similarity, get_method, hdf5_layer, rsa_rdm

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
_naming = prefixed_errors


# --------------------------------------------------------------------------- RSA

def rdm_file(activations: PathLike, out: PathLike, layers: Sequence[str], normalization: str,
             distance: str, block_size: int | None = None, locking: bool | None = None) -> None:
    """RDMs of every ``layers`` entry of one model's activation file, into one RDM file.

    Each layer is read whole in its stored dtype (float16 by default: at most ~0.5 GB per layer
    at 500 images) and streamed through the Gram accumulation in column blocks; one layer at a
    time is in memory.
    """
    ids, sha = probe_attrs(activations, locking)
    with open_h5(activations, "r", locking) as f:
        model = str(f.attrs.get("model", os.path.splitext(os.path.basename(activations))[0]))
        available = set(f["layers"])
    missing = [layer for layer in layers if layer not in available]
    if missing:
        raise KeyError(f"activation file {activations} has no layers {missing}; it has {sorted(available)}")
    rdms = {}
    for layer in tqdm(layers, desc=f"RDMs {model}", unit="layer"):
        with _naming(f"RDM of model {model}, layer {layer} ({activations})"):
            rdms[layer], _ = rsa_rdm(hdf5_layer(activations, layer, locking), normalization, distance,
                                     block_size)
    write_rdms(out, ids, rdms, {"model": model, "normalization": normalization, "distance": distance,
                                "probe_sha256": sha})


def rsa_similarity_file(rdm_files: Sequence[PathLike], models: Sequence[str], layer: str,
                        h5_out: PathLike, csv_out: PathLike, options: Mapping[str, Any],
                        locking: bool | None = None, method: str = "rsa") -> np.ndarray:
    """The matrix of an RDM-reading method (RSA) on one layer, from the models' RDM files: the
    method's registered second step (``from_stored``) with the analysis's options."""
    spec = get_method(method)
    assert spec.from_stored is not None
    ids, sha = check_same_probe(rdm_files, locking)
    rdms = read_rdms(rdm_files, layer, locking)
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

def attribution_file(spec: Any, model: Any, probe: PathLike, out: PathLike,
                     kinds: Sequence[str], epsilon: float, batch_size: int,
                     storage_dtype: str = "float16", locking: bool | None = None) -> None:
    """Attribution maps of one model for every probe image (batched autograd) into one file.

    ``/maps/{kind}`` holds ``[N, S, S]`` maps; with float16 storage each image's map is scaled
    to max |value| 1 and the factor kept in ``/scales/{kind}`` (cosines are scale-invariant).
    ``spec`` is the model's :class:`tasksim.zoo.ModelSpec`, ``model`` its network.
    """
    import torch

    from tasksim.probe.preprocess import network_input
    from tasksim.similarity.attribution import attribution_maps, to_float16

    device = next(iter(model.parameters())).device
    with open_h5(probe, "r", locking) as pf:
        n = int(pf["images"].shape[0])
        res = int(pf.attrs["resolution"])
        ids = read_str(pf["ids"])
        sha = str(pf.attrs["content_sha256"])
        attrs = {"model": spec.name, "epsilon": epsilon, "probe_sha256": sha,
                 "low_saturation": spec.low_saturation, "target": "sum of all encoder output units"}
        with attribution_writer(out, ids, list(kinds), res, storage_dtype, attrs) as (dsets, sc):
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


def attribution_similarity_file(attribution_files: Sequence[PathLike], models: Sequence[str], kind: str,
                                method: str, h5_out: PathLike, csv_out: PathLike,
                                options: Mapping[str, Any], locking: bool | None = None) -> np.ndarray:
    """Mean per-image cosine of the models' ``kind`` maps (per-image cosines kept for bootstrap)."""
    ids, sha = check_same_probe(attribution_files, locking)
    opened = [attribution_maps_of(p, kind, locking) for p in attribution_files]
    try:
        matrix, info = compute_similarity(method, [maps for _, maps in opened], names=list(models))
    finally:
        for handle, _ in opened:
            handle.close()
    per_image = info.pop("per_image")
    write_similarity(h5_out, csv_out, matrix, models, method, "input", options, sha, len(ids),
                     info={"kind": kind}, per_image=per_image)
    return matrix
