"""Glue for the thin rule scripts in ``scripts/``: logging to the rule's log, threads, config."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from tasksim.config import validate_config


def setup(snakemake: Any) -> logging.Logger:
    """Send logging (and warnings, and uncaught exceptions) to the rule's ``log[0]``; set threads.

    Snakemake limits OMP/MKL threads to the rule's ``threads``; torch is told the same.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if snakemake.log:
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if getattr(snakemake.params, "locking", None) is False:
        os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"  # shared file systems
    log = logging.getLogger(f"tasksim.rule.{snakemake.rule}")

    def _excepthook(exc_type, exc, tb):  # noqa: ANN001
        log.error("rule %s failed", snakemake.rule, exc_info=(exc_type, exc, tb))

    sys.excepthook = _excepthook
    try:
        import torch

        torch.set_num_threads(max(1, int(snakemake.threads)))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return log


def partial_config(parts: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a partial configuration (the keys a rule received) with all defaults filled."""
    return validate_config(dict(parts))
