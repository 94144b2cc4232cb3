"""Activation extraction: one model, all probe images, recorded layers into one HDF5 file.

Batched forward passes. The *fast path* (default) folds every batch norm into the convolution
that feeds it, stores the weights in bfloat16, runs under bf16 autocast in the channels_last
memory format and keeps a few numerically sensitive modules in float32
(:func:`prepare_for_inference`). ``precision='int8'`` (CPU only) goes further: the residual
branches of the ResNet bottlenecks run in static int8, calibrated on the first probe images, with
the residual stream in floating point (:mod:`tasksim.extract.quantize`). The agreement of both with plain
fp32 is checked by ``tests/test_extract.py`` (encoder_output RDM Spearman >= 0.999). Layer
outputs are recorded by forward hooks and written batch by batch (memory is constant in N).

Interrupted runs resume: rows are written to ``<out>.partial`` whose attribute ``rows_done``
is updated after every batch. The partial file carries a *resume key* (:func:`resume_key`): one
canonical JSON object of everything that determines its rows (weights SHA-256, builder and its
arguments, layers, preprocessing, precision and its int8 calibration, storage dtype, probe set,
code versions). A later call continues from ``rows_done`` only when its key is identical;
otherwise it starts afresh and logs which entries differed. The final file appears by rename only
when complete. Layout: docs/data-layout.md.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tasksim.extract.fold import fold_batchnorm
from tasksim.extract.quantize import cpu_has_vnni, quantize_residual_branches
from tasksim.io import NonFiniteError, open_h5, read_str, str_dataset, versions
from tasksim.probe.preprocess import LOW_SAT_RANGE, network_input
from tasksim.zoo import TASKONOMY_FP32_MODULES, ModelSpec, record_layers

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")
#: compute_dtype provenance attribute of each precision.
COMPUTE_DTYPES = {"fp32": "float32", "bf16": "bfloat16",
                  "int8": "int8 residual branches, bfloat16 elsewhere"}

PROVENANCE_KEYS = ("model", "weights_sha256", "probe_sha256", "preprocessing", "compute_dtype",
                   "storage_dtype", "channels_last", "fold_batchnorm", "layers", "resume_key")


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (cuda if available) -> torch.device; cuda must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key device is 'cuda' but torch sees no CUDA device")
    return torch.device(device)


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``ValueError`` for an unknown precision, or int8 on a non-CPU device."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} ({', '.join(PRECISIONS)})")
    if precision == "int8" and device.type != "cpu":
        raise ValueError(f"precision 'int8' runs on the CPU only (FBGEMM/oneDNN quantized kernels), "
                         f"not on {device.type}; use precision 'bf16' there")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast context for ``precision`` ``'bf16'`` or ``'int8'`` (whose float parts run in
    bf16), else a no-op."""
    check_precision(precision, device)
    if precision in ("bf16", "int8"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def fp32_islands(model: torch.nn.Module, names: tuple[str, ...]):
    """Run the named submodules in float32 even inside a bf16 autocast region."""
    originals = {}
    for name in names:
        try:
            mod = model.get_submodule(name)
        except AttributeError:
            continue
        originals[name] = mod.forward

        def fwd(*args, _orig=mod.forward, **kwargs):
            with torch.autocast(device_type=args[0].device.type, enabled=False):
                return _orig(*(a.float() if torch.is_tensor(a) else a for a in args), **kwargs)

        mod.forward = fwd
    try:
        yield model
    finally:
        for name, orig in originals.items():
            model.get_submodule(name).forward = orig


def prepare_for_inference(model: torch.nn.Module, layers: Mapping[str, str], precision: str = "bf16",
                          channels_last: bool = True, fold_bn: bool = True,
                          fp32_modules: tuple[str, ...] = TASKONOMY_FP32_MODULES,
                          calibration: Iterable[torch.Tensor] = ()) -> torch.nn.Module:
    """A copy of ``model`` set up for :func:`forward_layers` (the caller's model is untouched).

    eval mode; batch norms folded into convolutions (``fold_bn``, recorded layers kept);
    under ``precision='int8'`` the bottleneck branches become static int8
    (:func:`tasksim.extract.quantize.quantize_residual_branches`, calibrated on the ``calibration``
    batches of network inputs; recorded layers inside a block keep it in floating point);
    under ``'bf16'`` and ``'int8'`` the (remaining float) weights are stored in bfloat16 except
    the modules named in ``fp32_modules``; channels_last memory format if asked."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    check_precision(precision, device)
    model = copy.deepcopy(model).eval()
    if fold_bn:
        fold_batchnorm(model, keep=set(layers.values()))
    if precision == "int8":
        quantize_residual_branches(model, calibration, keep=set(layers.values()))
    if precision in ("bf16", "int8"):
        model = model.to(torch.bfloat16)
        for name in fp32_modules:
            with contextlib.suppress(AttributeError):
                model.get_submodule(name).float()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def forward_layers(model: torch.nn.Module, layers: Mapping[str, str], x: torch.Tensor,
                   precision: str = "fp32", fp32_modules: tuple[str, ...] = TASKONOMY_FP32_MODULES
                   ) -> dict[str, torch.Tensor]:
    """One forward pass; float32 CPU copies of the recorded layer outputs (NCHW, contiguous).

    Under ``precision`` ``'bf16'`` or ``'int8'`` the modules named in ``fp32_modules`` run in float32."""
    islands = fp32_islands(model, fp32_modules) if precision != "fp32" else contextlib.nullcontext()
    with record_layers(model, layers) as store, torch.inference_mode(), islands, autocast(precision, x.device):
        model(x)
    return {k: v.float().contiguous().cpu() for k, v in store.items()}


def resume_key(spec: ModelSpec, *, weights_sha256: str, probe_sha256: str, n_images: int,
               preprocessing: str, precision: str, storage_dtype: str, channels_last: bool,
               fold_bn: bool, calibration: Mapping[str, Any] | None = None) -> str:
    """Canonical JSON (sorted keys, no spaces) of everything that determines the rows of an
    activation file; two runs may share a partial file only when their keys are equal.

    ``calibration`` describes the int8 calibration (images, batches, observer bit width) and is
    ``None`` for the float precisions."""
    key = {
        "model": spec.name,
        "builder": spec.builder,
        "builder_kwargs": spec.builder_kwargs,
        "weights_sha256": weights_sha256,
        "layers": spec.layers,
        "low_saturation": bool(spec.low_saturation),
        "resolution": spec.resolution,
        "probe_sha256": probe_sha256,
        "n_images": int(n_images),
        "preprocessing": json.loads(preprocessing),
        "precision": precision,
        "calibration": dict(calibration) if calibration is not None else None,
        "storage_dtype": storage_dtype,
        "channels_last": bool(channels_last),
        "fold_batchnorm": bool(fold_bn),
        "versions": versions(),
    }
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=repr)


def _key_differences(old: str, new: str) -> list[str]:
    """Top-level entries of two resume keys that differ (``['<unreadable>']`` if ``old`` is not one)."""
    try:
        a = json.loads(old)
    except (TypeError, ValueError):
        return ["<unreadable resume key>"]
    b = json.loads(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def storable(act: np.ndarray, storage_dtype: str, model: str, layer: str, rows: tuple[int, int]) -> np.ndarray:
    """``act`` cast to ``storage_dtype``; :class:`tasksim.io.NonFiniteError` naming the model, the
    layer, the probe rows and the largest magnitude if the layer or its cast is not finite
    (float16 holds at most 65504)."""
    act = np.asarray(act)
    where = f"model {model} layer {layer} (probe rows {rows[0]}..{rows[1] - 1})"
    finite = np.isfinite(act)
    if not finite.all():
        biggest = float(np.abs(act[finite]).max()) if finite.any() else float("nan")
        raise NonFiniteError(f"{where} produced {int((~finite).sum())} NaN/inf values (largest finite "
                             f"magnitude {biggest:.4g}): the model's output is not finite")
    with np.errstate(over="ignore"):
        out = act.astype(storage_dtype)
    if not np.isfinite(out).all():
        biggest = float(np.abs(act).max())
        raise NonFiniteError(f"{where} has values up to magnitude {biggest:.4g}, beyond the range of "
                             f"{storage_dtype} storage (max {float(np.finfo(storage_dtype).max):.6g}); "
                             "set extraction.storage_dtype: float32")
    return out


def _compression(name: str) -> dict[str, Any]:
    if name == "none":
        return {}
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if name == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"unknown compression {name!r} (none, lzf, gzip)")


def extract_activations(spec: ModelSpec, model: torch.nn.Module, probe_path: str | os.PathLike[str],
                        out_path: str | os.PathLike[str], *, batch_size: int = 16,
                        precision: str = "bf16", channels_last: bool = True,
                        storage_dtype: str = "float16", compression: str = "lzf",
                        fold_bn: bool = True, calibration_images: int = 16,
                        weights_sha256: str | None = None, locking: bool | None = None,
                        progress: bool = True,
                        on_batch: Callable[[int], None] | None = None) -> Path:
    """Extract the layers of ``spec`` for every probe image into ``out_path``.

    ``model`` is the loaded model (already on its device). ``on_batch(rows_done)`` is called after
    each batch is safely written (used to test interruption). ``fold_bn`` folds batch norms into
    convolutions (:func:`prepare_for_inference`). ``precision='int8'`` is calibrated on the first
    ``calibration_images`` probe images (preprocessed as for extraction), so a resumed run
    rebuilds the same int8 model. Returns ``out_path``.
    """
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    device = next(iter(model.parameters()), torch.empty(0)).device
    check_precision(precision, device)
    with open_h5(probe_path, "r", locking) as pf:
        n = int(pf["images"].shape[0])
        ids = read_str(pf["ids"])
        probe_sha = str(pf.attrs["content_sha256"])
        res = int(pf.attrs["resolution"])
        if spec.resolution and spec.resolution != res:
            raise ValueError(f"model {spec.name} expects {spec.resolution}px input but probe file "
                             f"{probe_path} holds {res}px images")
        preprocessing = json.dumps({
            "resolution": res, "crop": "centre square", "resize": "bilinear",
            "range": [-1.0, 1.0], "low_saturation": spec.low_saturation,
            "low_saturation_clip": list(LOW_SAT_RANGE) if spec.low_saturation else None})
        calibration = ()
        if precision == "int8":
            k = min(n, calibration_images)
            calibration = [network_input(pf["images"][lo:min(k, lo + batch_size)], spec.low_saturation)
                           for lo in range(0, k, batch_size)]
        model = prepare_for_inference(model, spec.layers, precision, channels_last, fold_bn,
                                      calibration=calibration)
        compute_dtype = COMPUTE_DTYPES[precision]
        if precision == "int8":
            compute_dtype += f" (calibrated on the first {min(n, calibration_images)} probe images)"
        calibration_key = None
        if precision == "int8":
            calibration_key = {"images": min(n, calibration_images), "batch_size": batch_size,
                               "vnni": cpu_has_vnni()}
        key = resume_key(spec, weights_sha256=weights_sha256 or spec.sha256 or "", probe_sha256=probe_sha,
                         n_images=n, preprocessing=preprocessing, precision=precision,
                         storage_dtype=storage_dtype, channels_last=channels_last, fold_bn=fold_bn,
                         calibration=calibration_key)
        prov = {"model": spec.name, "weights_sha256": weights_sha256 or spec.sha256 or "",
                "probe_sha256": probe_sha, "preprocessing": preprocessing,
                "compute_dtype": compute_dtype,
                "storage_dtype": storage_dtype, "channels_last": bool(channels_last),
                "fold_batchnorm": bool(fold_bn),
                "layers": json.dumps(spec.layers, sort_keys=True), "resume_key": key}
        start = _resume_point(partial, key, n, locking)
        mode = "a" if start > 0 else "w"
        if start == 0 and partial.exists():
            partial.unlink()
        with open_h5(partial, mode, locking) as f:
            if start == 0:
                f.attrs.update(prov)
                f.attrs.update({"architecture": spec.builder, "n_images": n,
                                "versions": json.dumps(versions()), "rows_done": 0})
                str_dataset(f, "ids", ids)
                f.create_group("layers")
            else:
                log.info("resuming %s at row %d of %d", partial, start, n)
            bar = tqdm(total=n, initial=start, desc=f"extract {spec.name}", unit="img", disable=not progress)
            for lo in range(start, n, batch_size):
                hi = min(n, lo + batch_size)
                x = network_input(pf["images"][lo:hi], spec.low_saturation, device, channels_last)
                outs = forward_layers(model, spec.layers, x, precision)
                for name, act in outs.items():
                    try:
                        arr = storable(act.numpy(), storage_dtype, spec.name, name, (lo, hi))
                    except NonFiniteError:
                        f.close()
                        partial.unlink(missing_ok=True)  # rerunning reproduces the same values
                        raise
                    if name not in f["layers"]:
                        f["layers"].create_dataset(name, shape=(n, *arr.shape[1:]), dtype=storage_dtype,
                                                   chunks=(1, *arr.shape[1:]), **_compression(compression))
                    f["layers"][name][lo:hi] = arr
                f.attrs["rows_done"] = hi
                f.flush()
                bar.update(hi - lo)
                if on_batch is not None:
                    on_batch(hi)
            bar.close()
            missing = [name for name in spec.layers if name not in f["layers"]]
            if missing:
                raise RuntimeError(f"layers {missing} of model {spec.name} produced no output")
    os.replace(partial, out_path)
    return out_path


def _resume_point(partial: Path, key: str, n: int, locking: bool | None) -> int:
    """Rows already written by an interrupted run with an identical resume key, else 0 (the
    reason for not resuming is logged: the entries of the key that differ)."""
    if not partial.exists():
        return 0
    try:
        with open_h5(partial, "r", locking) as f:
            old = f.attrs.get("resume_key")
            old = old.decode() if isinstance(old, bytes) else old
            done = int(f.attrs.get("rows_done", 0))
    except (OSError, KeyError, ValueError) as err:
        log.warning("ignoring unreadable partial file %s (%s); starting over", partial, err)
        return 0
    if old is None:
        log.warning("not resuming %s: it has no resume key (written by an older tasksim); starting over",
                    partial)
        return 0
    if old != key:
        log.warning("not resuming %s: its rows were computed with a different %s; starting over",
                    partial, ", ".join(_key_differences(old, key)))
        return 0
    if not 0 < done < n:
        log.info("not resuming %s: rows_done %d of %d; starting over", partial, done, n)
        return 0
    return done

