"""How the scores stage rebuilds a method's matrix on resampled images, as the method table
declares (:mod:`tasksim.similarity.registry`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tasksim.similarity.files import SimilarityFile, read_rdms
from tasksim.similarity.registry import hdf5_layer, hdf5_layer_shape
from tasksim.taxonomy import uncertainty as _unc


def bootstrap_source(method: str, models: Sequence[str], sim: SimilarityFile,
                     rdm_files: Mapping[str, str] | None = None,
                     activation_files: Mapping[str, str] | None = None, layer: str | None = None,
                     options: Mapping[str, Any] | None = None, max_mb: int = 4000,
                     ) -> tuple[Callable[[np.ndarray], pd.DataFrame] | None, str, str]:
    """``(similarity_fn(index) -> DataFrame, kind, reason)`` rebuilding the matrix of ``method``
    on resampled images, the way its method-table entry declares (``bootstrap``), with the
    analysis's own ``options``; ``similarity_fn`` is None (and ``reason`` says why) where
    impossible.

    * ``rdms``: stored RDMs ``R/rdms/{model}.h5:/rdms/{layer}``, image pairs resampled
      (duplicates dropped), compared as the analysis compares them.
    * ``per_image``: the per-image similarities stored in the matrix file (``/per_image``).
    * ``grams``: feature-centred Gram matrices of the activations, resampled and re-centred, then
      the method on those Grams (exactly a recomputation on the resampled images).
    * ``recompute``: the method run again on the resampled activations (in memory, if the
      layer's features fit in ``max_mb``).
    """
    from tasksim.similarity.registry import get_method

    spec = get_method(method)
    models = list(models)
    options = dict(options or {})
    kind = spec.bootstrap
    if kind == "per_image":
        if sim.per_image is None:
            return None, kind, "the similarity file has no /per_image cosines"
        return _unc.attribution_similarity_fn(sim.per_image, models), kind, ""
    if kind == "rdms":
        missing = [m for m in models if not rdm_files or m not in rdm_files]
        if missing:
            return None, kind, f"no stored RDMs for {missing}"
        rdms = read_rdms([rdm_files[m] for m in models], layer, dtype=np.float32)
        comparison = options.get("comparison", spec.options().get("comparison", "spearman"))
        return _unc.rsa_similarity_fn(np.stack(rdms), models, comparison=comparison), kind, ""
    missing = [m for m in models if not activation_files or m not in activation_files]
    if missing:
        return None, kind, f"no activations for {missing}"
    from tasksim.similarity import rsa as _rsa

    def load(m: str) -> np.ndarray:
        return hdf5_layer(activation_files[m], layer)()

    if kind == "grams":
        from tasksim.similarity import cka as _cka

        grams = np.stack([_rsa.accumulate_gram(_rsa.iter_column_blocks(load(m)), "center").gram
                          for m in models])
        assert spec.from_stored is not None  # register() requires it for this kind
        gram_options = {k: v for k, v in options.items()
                        if k in inspect.signature(spec.from_stored).parameters}

        def gram_fn(index: np.ndarray) -> pd.DataFrame:
            ks = [_cka.center_gram(g[np.ix_(index, index)]) for g in grams]
            s = spec.from_stored(ks, **gram_options)
            return pd.DataFrame(s, index=models, columns=models)

        return gram_fn, kind, ""
    shape = hdf5_layer_shape(activation_files[models[0]], layer)
    mb = len(models) * int(np.prod(shape)) * 8 / 2**20
    if mb > max_mb:
        return None, kind, (f"features of layer {layer} take {mb:.0f} MB > "
                            f"taxonomy.recompute_max_mb = {max_mb}")
    acts = [np.asarray(load(m), dtype=np.float64) for m in models]

    def recompute_fn(index: np.ndarray) -> pd.DataFrame:
        s, _ = spec.fn([a[index] for a in acts], **options)
        return pd.DataFrame(s, index=models, columns=models)

    return recompute_fn, kind, ""


