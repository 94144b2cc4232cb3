"""Model x model similarity methods: RSA, CKA, SVCCA / PWCCA, and their registry.

(The pairwise function ``cka`` is not re-exported here so that ``tasksim.similarity.cka`` stays
the module; use ``from tasksim.similarity.cka import cka``.)

``compute_similarity(name, features, **options) -> (matrix, info)`` runs any registered method
(see :mod:`tasksim.similarity.registry`); the building blocks live in :mod:`.rsa`, :mod:`.cka`
and :mod:`.cca`.
"""

from .cca import conv_to_points, reduce_representation, svcca, svcca_matrix
from .cka import center_gram, cka_matrix, gram_linear, gram_rbf, gram_rbf_from_linear
from .registry import (
    REGISTRY,
    MethodSpec,
    available_methods,
    compute_similarity,
    get_method,
    hdf5_layer,
    register,
)
from .rsa import (
    DegenerateFeaturesError,
    GramStats,
    accumulate_gram,
    compare_rdms,
    iter_column_blocks,
    kendall_tau_a,
    rdm,
    rdm_from_gram,
    rdm_streamed,
    rsa_matrix,
)

__all__ = [
    "REGISTRY", "MethodSpec", "available_methods", "compute_similarity", "get_method", "hdf5_layer",
    "register", "DegenerateFeaturesError", "GramStats", "accumulate_gram", "compare_rdms",
    "iter_column_blocks", "kendall_tau_a", "rdm", "rdm_from_gram", "rdm_streamed", "rsa_matrix",
    "center_gram", "cka_matrix", "gram_linear", "gram_rbf", "gram_rbf_from_linear",
    "conv_to_points", "reduce_representation", "svcca", "svcca_matrix",
]
