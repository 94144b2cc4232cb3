"""One place where similarity methods are registered.

A method is a function ``fn(features, **options) -> (matrix, info)``: ``features`` is a sequence
with one feature source per model (same probe images, same order), ``matrix`` the ``[M, M]``
model x model similarity (symmetric, unit diagonal) and ``info`` a JSON-serialisable dict of
what was done (options, sizes, caps). :func:`register` declares the method once, with what the
pipeline needs to know about it (:class:`MethodSpec`: what its rule reads, the configuration
section of its options, its layers, how the bootstrap rebuilds it). The configuration schema's
method list, the rules' wildcards, the scores stage and the bootstrap all read this table, so
adding a method is one decorated function plus, if it has options, their keys (named like the
function's keywords, with the same defaults) in the schema section::

    from tasksim.similarity.registry import register

    @register("cka_quadratic", section="cka", bootstrap="recompute")
    def cka_quadratic(features, debiased=False, names=None):
        ...
        return matrix, info

Modules listed in :data:`PLUGIN_MODULES` (``tasksim.similarity.attribution``) are imported on the first
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

#: Feature columns per block when Gram matrices are accumulated (``similarity.rsa.block_size``).
DEFAULT_BLOCK_SIZE = 65536

#: Modules imported lazily to register further methods (attribution maps).
PLUGIN_MODULES: tuple[str, ...] = ("tasksim.similarity.attribution",)


#: What a method's pipeline rule reads (docs/architecture.md): stored activations of one layer,
#: stored RDMs of one layer, or stored attribution maps.
READS: tuple[str, ...] = ("activations", "rdms", "attribution_maps")
#: How the scores stage rebuilds a method's matrix on images resampled with replacement:
#: ``rdms`` (stored RDMs, image pairs resampled), ``per_image`` (stored per-image similarities,
#: averaged over the resampled images), ``grams`` (feature Gram matrices of the activations,
#: resampled and re-centred), ``recompute`` (the method run again on resampled activations).
BOOTSTRAPS: tuple[str, ...] = ("rdms", "per_image", "grams", "recompute")


@dataclass(frozen=True)
class MethodSpec:
    """One similarity method: the method table's entry, declared once with :func:`register`.

    ``section`` names the configuration section ``similarity.<section>`` holding the method's
    options (keys equal to the function's keyword names; schema defaults equal to the
    function's) and, unless ``layers`` fixes them, its ``layers``. ``reads`` says what the
    pipeline's rule feeds it. ``from_stored`` is the method's second step, from one
    intermediate per model to the matrix, where it has one: for RSA the stored RDMs (the
    pipeline's ``rdms`` rule stores them), for CKA the centred Gram matrices (which the
    bootstrap resamples); ``fn`` is the per-model step followed by ``from_stored``.
    """

    name: str
    fn: MethodFn
    reads: str
    section: str
    bootstrap: str
    description: str
    family: str = "label-free"
    layers: tuple[str, ...] | None = None
    from_stored: Callable[..., np.ndarray] | None = None

    @property
    def kind(self) -> str:
        """``attribution`` (reads attribution maps) or ``features`` (reads activations)."""
        return "attribution" if self.reads == "attribution_maps" else "features"

    def options(self) -> dict[str, Any]:
        """Keyword options of the function with their defaults (its signature)."""
        return _signature_options(self.fn)


REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, *, reads: str = "activations", section: str | None = None,
             bootstrap: str = "recompute", layers: tuple[str, ...] | None = None,
             family: str = "label-free", from_stored: Callable[..., np.ndarray] | None = None,
             description: str = "", replace: bool = False) -> Callable[[MethodFn], MethodFn]:
    """Decorator declaring ``fn`` as method ``name`` (refuses duplicates unless ``replace``).

    ``section`` defaults to ``name``. See :class:`MethodSpec` for the fields."""
    if reads not in READS:
        raise ValueError(f"method {name!r}: reads must be one of {READS}, got {reads!r}")
    if bootstrap not in BOOTSTRAPS:
        raise ValueError(f"method {name!r}: bootstrap must be one of {BOOTSTRAPS}, got {bootstrap!r}")
    if (reads == "rdms" or bootstrap in ("rdms", "grams")) and from_stored is None:
        raise ValueError(f"method {name!r} reads RDMs or resamples Gram matrices and needs from_stored")

    def deco(fn: MethodFn) -> MethodFn:
        if name in REGISTRY and not replace and REGISTRY[name].fn is not fn:
            raise ValueError(f"similarity method {name!r} is already registered")
        doc = description or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        REGISTRY[name] = MethodSpec(name, fn, reads, section or name, bootstrap, doc, family,
                                    tuple(layers) if layers is not None else None, from_stored)
        return fn

    return deco


def unregister(name: str) -> None:
    """Remove method ``name`` (tests registering a toy method clean up with it)."""
    REGISTRY.pop(name, None)


def _load_plugins() -> None:
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:  # the plugin exists but one of its imports is missing
                raise


def import_plugins(modules: Sequence[str], key: str = "similarity.plugins") -> None:
    """Import the user's modules that register further methods (configuration ``key``); a module
    that cannot be imported fails naming it and the key."""
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ImportError as err:
            raise ImportError(f"config key {key}: cannot import method module {mod!r} ({err}); "
                              f"it must be importable from the working directory or PYTHONPATH") from err


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
_NOT_OPTIONS: frozenset[str] = frozenset({"features", "maps", "names", "keep_rdms", "compute_dtype"})


def _signature_options(fn: Callable[..., Any]) -> dict[str, Any]:
    import inspect

    params = inspect.signature(fn).parameters
    return {p.name: p.default for p in params.values()
            if p.name not in _NOT_OPTIONS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.default is not p.empty}


def method_options(name: str) -> dict[str, Any]:
    """Keyword options of method ``name`` with their defaults (from its function signature)."""
    return get_method(name).options()


def methods_reading(reads: str) -> list[str]:
    """Names of the registered methods whose pipeline rule reads ``reads`` (plugins included)."""
    _load_plugins()
    return sorted(n for n, s in REGISTRY.items() if s.reads == reads)


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
            return _layer_dataset(f, path, layer)[...]

    return load


def _layer_dataset(f: Any, path: Any, layer: str) -> Any:
    try:
        return f["layers"][layer]
    except KeyError:
        raise KeyError(f"activation file {path} has no layer {layer!r}; it has "
                       f"{sorted(f['layers']) if 'layers' in f else 'no /layers group'}") from None


def hdf5_layer_shape(path: str | os.PathLike[str], layer: str, locking: bool | None = None) -> tuple[int, ...]:
    """Shape of ``/layers/{layer}`` of an activation file, without reading it."""
    import h5py

    kwargs: dict[str, Any] = {} if locking is None else {"locking": locking}
    with h5py.File(path, "r", **kwargs) as f:
        return tuple(_layer_dataset(f, path, layer).shape)


def load_source(source: Any) -> np.ndarray | Iterable[np.ndarray]:
    """An array (for array-like sources) or the iterable of column blocks itself."""
    while callable(source) and not hasattr(source, "shape"):
        source = source()
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        return np.asarray(source)
    if isinstance(source, Iterable):
        return source
    raise TypeError(f"unsupported feature source of type {type(source).__name__}")


def _blocks(source: Any, block_size: int | None) -> Iterator[np.ndarray] | Iterable[np.ndarray]:
    s = load_source(source)
    if isinstance(s, np.ndarray):
        if s.ndim < 2:
            raise ValueError(f"features must be [N, ...], got shape {s.shape}")
        return _rsa.iter_column_blocks(s, block_size)
    return s


def _array(source: Any, method: str) -> np.ndarray:
    s = load_source(source)
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


def rsa_rdm(source: Any, normalization: str = "center", distance: str = "pearson",
            block_size: int | None = DEFAULT_BLOCK_SIZE, compute_dtype: str | None = None,
            name: str = "model") -> tuple[np.ndarray, int]:
    """``(RDM [N, N], number of features)`` of one model's feature source (the per-model step of
    RSA, which the pipeline's ``rdms`` rule stores)."""
    stats = _per_model(name, _rsa.accumulate_gram, _blocks(source, block_size), normalization,
                       compute_dtype)
    return _per_model(name, _rsa.rdm_from_gram, stats, distance), stats.n_features


def rsa_from_rdms(rdms: Sequence[np.ndarray] | np.ndarray, comparison: str = "spearman") -> np.ndarray:
    """``[M, M]`` RSA matrix of M stored RDMs: correlation of their upper triangles."""
    return _rsa.rsa_matrix(rdms, comparison)  # type: ignore[arg-type]


def rsa_method(
    features: Sequence[Any], normalization: str = "center", distance: str = "pearson",
    comparison: str = "spearman", block_size: int | None = DEFAULT_BLOCK_SIZE,
    keep_rdms: bool = False, names: Sequence[str] | None = None, compute_dtype: str | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """RSA: per-model RDM (streamed), then correlation of RDM upper triangles.

    ``keep_rdms=True`` adds ``info["rdms"]``, the ``[M, N, N]`` float64 array (not JSON: store it
    separately)."""
    rdms = []
    n_features = []
    for src, label in zip(features, _names(names, len(features)), strict=True):
        r, d = rsa_rdm(src, normalization, distance, block_size, compute_dtype, label)
        rdms.append(r)
        n_features.append(d)
    matrix = rsa_from_rdms(rdms, comparison)
    info: dict[str, Any] = {
        "method": "rsa", "normalization": normalization, "distance": distance,
        "comparison": comparison, "n_models": len(rdms), "n_images": int(rdms[0].shape[0]),
        "n_features": n_features, "names": _names(names, len(rdms)),
    }
    if keep_rdms:
        info["rdms"] = np.stack(rdms)
    return matrix, info


register("rsa", reads="rdms", bootstrap="rdms", from_stored=rsa_from_rdms)(rsa_method)


def _centred_grams(features: Sequence[Any], block_size: int | None,
                   names: Sequence[str]) -> tuple[list[np.ndarray], list[int]]:
    grams, dims = [], []
    for src, label in zip(features, names, strict=True):
        stats = _per_model(label, _rsa.accumulate_gram, _blocks(src, block_size), "center")
        grams.append(stats.gram)
        dims.append(stats.n_features)
    return grams, dims


def cka_linear_from_grams(grams: Sequence[np.ndarray], debiased: bool = False,
                          names: Sequence[str] | None = None) -> np.ndarray:
    """``[M, M]`` linear CKA of M centred Gram matrices."""
    return _cka.cka_matrix(list(grams), debiased, _names(names, len(grams)))


def cka_rbf_from_grams(grams: Sequence[np.ndarray], rbf_threshold: float = 0.5, debiased: bool = False,
                       names: Sequence[str] | None = None) -> np.ndarray:
    """``[M, M]`` RBF CKA from M centred linear Gram matrices (bandwidth ``rbf_threshold`` x the
    median pairwise distance per model)."""
    labels = _names(names, len(grams))
    kernels = [_per_model(lab, _cka.gram_rbf_from_linear, g, rbf_threshold)
               for g, lab in zip(grams, labels, strict=True)]
    return _cka.cka_matrix(kernels, debiased, labels)


@register("cka_linear", section="cka", bootstrap="grams", from_stored=cka_linear_from_grams)
def cka_linear_method(
    features: Sequence[Any], debiased: bool = False, block_size: int | None = DEFAULT_BLOCK_SIZE,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Linear CKA (biased or debiased HSIC) from streamed Gram matrices."""
    labels = _names(names, len(features))
    grams, dims = _centred_grams(features, block_size, labels)
    matrix = cka_linear_from_grams(grams, debiased, labels)
    return matrix, {"method": "cka_linear", "debiased": debiased, "n_models": len(grams),
                    "n_images": int(grams[0].shape[0]), "n_features": dims,
                    "names": _names(names, len(grams))}


@register("cka_rbf", section="cka", bootstrap="grams", from_stored=cka_rbf_from_grams)
def cka_rbf_method(
    features: Sequence[Any], rbf_threshold: float = 0.5, debiased: bool = False,
    block_size: int | None = DEFAULT_BLOCK_SIZE, names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """RBF CKA, bandwidth ``rbf_threshold`` x median pairwise distance per model."""
    labels = _names(names, len(features))
    grams, dims = _centred_grams(features, block_size, labels)
    matrix = cka_rbf_from_grams(grams, rbf_threshold, debiased, labels)
    return matrix, {"method": "cka_rbf", "rbf_threshold": rbf_threshold, "debiased": debiased,
                    "n_models": len(grams), "n_images": int(grams[0].shape[0]), "n_features": dims,
                    "names": _names(names, len(grams))}


def _cca_method(method: str, features: Sequence[Any], keep: float | int, max_dim_ratio: float,
                conv_mode: str, names: Sequence[str] | None) -> tuple[np.ndarray, dict[str, Any]]:
    labels = _names(names, len(features))
    # one model's features in memory at a time: each is reduced as soon as it is loaded
    points = (_cca.conv_to_points(_array(src, method), conv_mode) for src in features)  # type: ignore[arg-type]
    matrix, info = _cca.svcca_matrix(points, keep, max_dim_ratio, method, labels)
    info.update(conv_mode=conv_mode, n_models=len(labels))
    return matrix, info


@register("svcca", section="cca")
def svcca_method(
    features: Sequence[Any], keep: float | int = _cca.DEFAULT_KEEP,
    max_dim_ratio: float = _cca.DEFAULT_MAX_DIM_RATIO, conv_mode: str = "spatial_mean",
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SVCCA: mean canonical correlation of the SVD-reduced representations."""
    return _cca_method("svcca", features, keep, max_dim_ratio, conv_mode, names)


@register("pwcca", section="cca")
def pwcca_method(
    features: Sequence[Any], keep: float | int = _cca.DEFAULT_KEEP,
    max_dim_ratio: float = _cca.DEFAULT_MAX_DIM_RATIO, conv_mode: str = "spatial_mean",
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """PWCCA: projection-weighted mean canonical correlation (Morcos et al. 2018)."""
    return _cca_method("pwcca", features, keep, max_dim_ratio, conv_mode, names)
