"""Label-based transferability estimators (H-score, LogME, LEEP, NCE, N-LEEP, TransRate, GBC,
linear MSE, PARC), their declaration table, helpers for dense targets and the source x target
matrix driver (:func:`transferability_matrix`).

``ESTIMATORS`` declares, once per estimator, the kinds of target it applies to, the input it
reads and its orientation; ``applicable`` and ``estimate`` read it. See
:mod:`tasksim.transferability.estimators`.
"""

from .estimators import (
    ESTIMATORS,
    LABEL_KINDS,
    CovariancePrep,
    EstimatorSpec,
    LogMEFit,
    NLEEPPrep,
    NotApplicable,
    RidgePrep,
    SVDPrep,
    TransRatePrep,
    applicable,
    bhattacharyya_coefficients,
    dense_to_cells,
    estimate,
    gbc,
    hscore,
    label_kind,
    ledoit_wolf_shrinkage,
    leep,
    linear_mse,
    logme,
    logme_evidence,
    mean_over_cells,
    nce,
    nleep,
    parc,
    prepare_hscore,
    prepare_linear_mse,
    prepare_logme,
    prepare_nleep,
    prepare_parc,
    prepare_shrinkage_hscore,
    prepare_transrate,
    ridge_fit,
    shrinkage_hscore,
    train_test_indices,
    transrate,
)
from .matrix import DEFAULT_GRID, TARGET_KINDS, transferability_matrix

__all__ = [
    "DEFAULT_GRID", "ESTIMATORS", "LABEL_KINDS", "TARGET_KINDS", "CovariancePrep", "EstimatorSpec",
    "LogMEFit", "NLEEPPrep", "NotApplicable", "RidgePrep", "SVDPrep", "TransRatePrep", "applicable",
    "bhattacharyya_coefficients", "dense_to_cells", "estimate", "gbc", "hscore", "label_kind",
    "ledoit_wolf_shrinkage", "leep", "linear_mse", "logme", "logme_evidence", "mean_over_cells",
    "nce", "nleep", "parc", "prepare_hscore", "prepare_linear_mse", "prepare_logme", "prepare_nleep",
    "prepare_parc", "prepare_shrinkage_hscore", "prepare_transrate", "ridge_fit",
    "shrinkage_hscore", "train_test_indices", "transferability_matrix", "transrate",
]
