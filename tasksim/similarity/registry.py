"""One place where similarity methods are registered.

A method is a function ``fn(features, **options) -> (matrix, info)``: ``features`` is a sequence
with one feature source per model (same probe images, same order), ``matrix`` the ``[M, M]``
model x model similarity (symmetric, unit diagonal) and ``info`` a JSON-serialisable dict of
what was done (options, sizes, caps). Adding a method is one decorated function here or in any
other module, plus one entry (its name and options) in the pipeline configuration::

    from tasksim.similarity.registry import register

    @register("attribution_saliency", kind="attribution")
    def saliency_similarity(features, **options):
        ...
        return matrix, info

Modules listed in :data:`PLUGIN_MODULES` (``tasksim.attribution``) are imported on the first
lookup of a name that is not registered yet, so their decorators run without the caller importing
them.

A *feature source* is any of: an array ``[N, ...]`` (numpy array, or an h5py dataset, read
whole); a zero-argument callable returning a source (lazy loading: only one model's features are
in memory at a time, see :func:`hdf5_layer`); or an iterable of 2-D column blocks ``[N, b]``
(streaming; accepted by the Gram-based methods ``rsa``, ``cka_linear`` and ``cka_rbf``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tasksim.io import prefixed_errors

from . import cca as _cca
from . import cka as _cka
from . import rsa as _rsa

MethodFn = Callable[..., tuple[np.ndarray, dict[str, Any]]]

#: Modules imported lazily to register further methods (attribution maps).
PLUGIN_MODULES: tuple[str, ...] = ("tasksim.attribution",)


@dataclass(frozen=True)
class MethodSpec:
    """A registered similarity method."""

    name: str
    fn: MethodFn
    kind: str  # "features" (activations of a layer) or "attribution" (attribution maps)
    description: str


REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, *, kind: str = "features", description: str = "",
             replace: bool = False) -> Callable[[MethodFn], MethodFn]:
    """Decorator registering ``fn`` under ``name`` (refuses duplicates unless ``replace``)."""

    def deco(fn: MethodFn) -> MethodFn:
        if name in REGISTRY and not replace and REGISTRY[name].fn is not fn:
            raise ValueError(f"similarity method {name!r} is already registered")
        doc = description or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        REGISTRY[name] = MethodSpec(name, fn, kind, doc)
        return fn

    return deco


def _load_plugins() -> None:
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:  # the plugin exists but one of its imports is missing
                raise


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` (plugin modules are imported on a miss)."""
    if name not in REGISTRY:
        _load_plugins()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown similarity method {name!r}; registered: "
                       f"{', '.join(sorted(REGISTRY))}") from None


def available_methods(kind: str | None = None) -> list[str]:
    """Names of the registered methods (plugins included), optionally of one ``kind``."""
    _load_plugins()
    return sorted(n for n, s in REGISTRY.items() if kind is None or s.kind == kind)


#: Parameters of a method function that are not options (inputs and bookkeeping).
_NOT_OPTIONS: frozenset[str] = frozenset({"features", "names"})


def method_options(name: str) -> dict[str, Any]:
    """Keyword options of method ``name`` with their defaults (from its function signature)."""
    import inspect

    params = inspect.signature(get_method(name).fn).parameters
    return {p.name: p.default for p in params.values()
            if p.name not in _NOT_OPTIONS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.default is not p.empty}


def compute_similarity(name: str, features: Sequence[Any], **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Run method ``name`` on one feature source per model; returns ``(matrix, info)``."""
    return get_method(name).fn(features, **options)


# --------------------------------------------------------------------------------------------
# feature sources


def hdf5_layer(path: str | os.PathLike[str], layer: str, locking: bool | None = None) -> Callable[[], np.ndarray]:
    """Lazy source reading ``/layers/{layer}`` of an activation file (docs/data-layout.md) whole,
    in its stored dtype, when called. ``locking=None`` follows ``HDF5_USE_FILE_LOCKING``."""

    def load() -> np.ndarray:
        import h5py

        kwargs: dict[str, Any] = {}
        if locking is not None:
            kwargs["locking"] = locking
        with h5py.File(path, "r", **kwargs) as f:
            return f[f"layers/{layer}"][...]

    return load


def resolve_source(source: Any) -> np.ndarray | Iterable[np.ndarray]:
    """An array (for array-like sources) or the iterable of column blocks itself."""
    while callable(source) and not hasattr(source, "shape"):
        source = source()
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        return np.asarray(source)
    if isinstance(source, Iterable):
        return source
    raise TypeError(f"unsupported feature source of type {type(source).__name__}")


def _blocks(source: Any, block_columns: int | None) -> Iterator[np.ndarray] | Iterable[np.ndarray]:
    s = resolve_source(source)
    if isinstance(s, np.ndarray):
        if s.ndim < 2:
            raise ValueError(f"features must be [N, ...], got shape {s.shape}")
        return _rsa.iter_column_blocks(s, block_columns)
    return s


def _array(source: Any, method: str) -> np.ndarray:
    s = resolve_source(source)
    if not isinstance(s, np.ndarray):
        raise TypeError(f"{method} needs whole arrays per model, not column-block streams")
    return s


def _per_model(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; a ``ValueError`` is re-raised (same type) naming the model."""
    with prefixed_errors(f"model {label}"):
        return fn(*args, **kwargs)


def _names(names: Sequence[str] | None, m: int) -> list[str]:
    out = list(names) if names is not None else [f"model[{i}]" for i in range(m)]
    if len(out) != m:
        raise ValueError(f"{len(out)} names for {m} models")
    return out


# --------------------------------------------------------------------------------------------
# the feature-based methods


@register("rsa")
def rsa_method(
    features: Sequence[Any], normalization: str = "center", distance: str = "pearson",
    compare: str = "spearman", block_columns: int | None = None,
    keep_rdms: bool = False, names: Sequence[str] | None = None, compute_dtype: str | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """RSA: per-model RDM (streamed), then correlation of RDM upper triangles.

    ``keep_rdms=True`` adds ``info["rdms"]``, the ``[M, N, N]`` float64 array (not JSON: store it
    separately)."""
    rdms = []
    n_features = []
    for src, label in zip(features, _names(names, len(features)), strict=True):
        stats = _per_model(label, _rsa.accumulate_gram, _blocks(src, block_columns), normalization,
                           compute_dtype)
        rdms.append(_per_model(label, _rsa.rdm_from_gram, stats, distance))
        n_features.append(stats.n_features)
    matrix = _rsa.rsa_matrix(rdms, compare)  # type: ignore[arg-type]
    info: dict[str, Any] = {
        "method": "rsa", "normalization": normalization, "distance": distance, "compare": compare,
        "n_models": len(rdms), "n_images": int(rdms[0].shape[0]), "n_features": n_features,
        "names": _names(names, len(rdms)),
    }
    if keep_rdms:
        info["rdms"] = np.stack(rdms)
    return matrix, info


def _centred_grams(features: Sequence[Any], block_columns: int | None,
                   names: Sequence[str]) -> tuple[list[np.ndarray], list[int]]:
    grams, dims = [], []
    for src, label in zip(features, names, strict=True):
        stats = _per_model(label, _rsa.accumulate_gram, _blocks(src, block_columns), "center")
        grams.append(stats.gram)
        dims.append(stats.n_features)
    return grams, dims


@register("cka_linear")
def cka_linear_method(
    features: Sequence[Any], debiased: bool = False, block_columns: int | None = None,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Linear CKA (biased or debiased HSIC) from streamed Gram matrices."""
    labels = _names(names, len(features))
    grams, dims = _centred_grams(features, block_columns, labels)
    matrix = _cka.cka_matrix(grams, debiased, labels)
    return matrix, {"method": "cka_linear", "debiased": debiased, "n_models": len(grams),
                    "n_images": int(grams[0].shape[0]), "n_features": dims,
                    "names": _names(names, len(grams))}


@register("cka_rbf")
def cka_rbf_method(
    features: Sequence[Any], threshold: float = 0.5, debiased: bool = False,
    block_columns: int | None = None, names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """RBF CKA, bandwidth ``threshold`` x median pairwise distance per model."""
    labels = _names(names, len(features))
    grams, dims = _centred_grams(features, block_columns, labels)
    kernels = [_per_model(lab, _cka.gram_rbf_from_linear, g, threshold) for g, lab in zip(grams, labels, strict=True)]
    matrix = _cka.cka_matrix(kernels, debiased, labels)
    return matrix, {"method": "cka_rbf", "threshold": threshold, "debiased": debiased,
                    "n_models": len(grams), "n_images": int(grams[0].shape[0]), "n_features": dims,
                    "names": _names(names, len(grams))}


def _cca_method(method: str, features: Sequence[Any], keep: float | int, max_dim_ratio: float,
                conv_mode: str, names: Sequence[str] | None) -> tuple[np.ndarray, dict[str, Any]]:
    labels = _names(names, len(features))
    reduced = []
    for src, lab in zip(features, labels, strict=True):
        pts = _cca.conv_to_points(_array(src, method), conv_mode)  # type: ignore[arg-type]
        reduced.append(_cca.reduce_representation(pts, keep, max_dim_ratio,
                                                  with_loadings=(method == "pwcca"), name=lab))
    matrix, info = _cca.matrix_from_reduced(reduced, method, labels)
    info.update(keep=keep, max_dim_ratio=max_dim_ratio, conv_mode=conv_mode, n_models=len(reduced))
    return matrix, info


@register("svcca")
def svcca_method(
    features: Sequence[Any], keep: float | int = _cca.DEFAULT_KEEP,
    max_dim_ratio: float = _cca.DEFAULT_MAX_DIM_RATIO, conv_mode: str = "spatial_points",
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SVCCA: mean canonical correlation of the SVD-reduced representations."""
    return _cca_method("svcca", features, keep, max_dim_ratio, conv_mode, names)


@register("pwcca")
def pwcca_method(
    features: Sequence[Any], keep: float | int = _cca.DEFAULT_KEEP,
    max_dim_ratio: float = _cca.DEFAULT_MAX_DIM_RATIO, conv_mode: str = "spatial_points",
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """PWCCA: projection-weighted mean canonical correlation (Morcos et al. 2018)."""
    return _cca_method("pwcca", features, keep, max_dim_ratio, conv_mode, names)
