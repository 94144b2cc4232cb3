"""Glue for the thin rule scripts in ``scripts/``: logging to the rule's log, threads, config."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from tasksim.config import validate_config


def retain_freed_memory() -> bool:
    """Let glibc malloc keep freed memory in the process instead of giving it back to the OS.

    Batched inference allocates and frees the same large activation tensors in every batch.
    glibc serves blocks above its (adaptive) mmap threshold with fresh pages and trims the heap
    top, so a batch can page-fault its whole working set in again: measured on a 2-core CPU, some
    processes took ~175,000 minor faults per 32 images through the Taskonomy encoder, which made
    int8 extraction ~30 % slower in those processes than in others. A fixed mmap threshold at its
    64-bit maximum (32 MiB) and no trimming keep the pages (the process holds at most its peak
    working set). Returns False, changing nothing, where the C library is not glibc."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def setup(snakemake: Any) -> logging.Logger:
    """Send logging (and warnings, and uncaught exceptions) to the rule's ``log[0]``; set threads.

    Snakemake limits OMP/MKL threads to the rule's ``threads``; torch is told the same. Freed
    memory stays in the process (:func:`retain_freed_memory`).
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
    retain_freed_memory()
    try:
        import torch

        torch.set_num_threads(max(1, int(snakemake.threads)))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return log


def partial_config(parts: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a partial configuration (the keys a rule received) with all defaults filled
    (layer references were checked on the whole configuration when the workflow started)."""
    return validate_config(dict(parts), references=False)
