"""Glue for the thin rule scripts in ``scripts/``: logging to the rule's log, threads, config."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
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
    if hdf5_locking(snakemake) is False:
        os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"  # shared file systems
    log = logging.getLogger(f"tasksim.rule.{snakemake.rule}")

    def _excepthook(exc_type, exc, tb):  # noqa: ANN001
        log.error("rule %s failed", snakemake.rule, exc_info=(exc_type, exc, tb))

    sys.excepthook = _excepthook
    plugins = (getattr(snakemake, "config", {}).get("similarity") or {}).get("plugins") or []
    if plugins:  # the user's method modules register their methods in this process too
        from tasksim.similarity.registry import import_plugins

        import_plugins(plugins)
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


#: Config keys that set how a job runs, never what it computes: kept out of rule params, so
#: changing them reruns nothing.
RUN_SETTINGS = frozenset({"threads", "mem_mb"})


def result_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """A config section without its run settings (:data:`RUN_SETTINGS`): what a rule's params carry."""
    return {k: v for k, v in section.items() if k not in RUN_SETTINGS}


def hdf5_locking(snakemake: Any) -> bool | None:
    """The ``hdf5_file_locking`` setting of the run (how files are opened, not what they hold)."""
    cfg = getattr(snakemake, "config", None) or {}
    return cfg.get("hdf5_file_locking") if isinstance(cfg, Mapping) else None


def run_label(snakemake: Any) -> str:
    """How figures and tables name the run: its results directory and probe set (both in every
    output path or provenance, so copying a config under another name changes no output)."""
    cfg = getattr(snakemake, "config", None) or {}
    return f"{cfg.get('results_dir', 'results')}, probe set '{cfg.get('probe', {}).get('name', '?')}'"


def _package_imports(tree: Any, base: str, package: str) -> list[str]:
    """Module names of ``package`` that an AST imports (``base``: the importing module's package)."""
    import ast

    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                root = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{root}.{node.module}" if node.module else root
            else:
                mod = node.module or ""
            if mod.split(".")[0] == package:
                out.append(mod)
                out += [f"{mod}.{a.name}" for a in node.names]  # submodules imported by name
    return out


#: Glue modules left out of :func:`code_digest`: they set jobs up and validate the configuration,
#: whose result-changing values reach each job as params of their own.
GLUE_MODULES = ("tasksim.snakeutils", "tasksim.config")


def module_closure(modules: Sequence[str], package: str = "tasksim",
                   exclude: Sequence[str] = GLUE_MODULES, root_dir: Path | None = None) -> list[Path]:
    """Source files of ``modules`` and of every ``package`` module they import, transitively,
    except ``exclude`` (and what only they import). Files are found in the package's folder by
    name; nothing is imported."""
    import ast

    root_dir = Path(root_dir) if root_dir is not None else Path(__file__).resolve().parent
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] != package or name in exclude:
            continue
        rel = Path(*name.split(".")[1:])
        candidates = ([root_dir / rel.with_suffix(".py"), root_dir / rel / "__init__.py"] if rel.parts
                      else [root_dir / "__init__.py"])
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:  # a name imported from a module, not a module
            continue
        seen[name] = path
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo += _package_imports(ast.parse(path.read_text(), filename=str(path)), base, package)
    return sorted(seen.values())


def code_digest(script: str | os.PathLike[str], package: str = "tasksim",
                root_dir: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the code a rule runs: its script and every ``package``
    module the script imports, transitively. As a rule param it reruns exactly the jobs whose code
    changed (a changed renderer reruns the figures, a changed RSA the RSA matrices and what
    depends on them), and nothing when only other stages' code changed."""
    import ast
    import hashlib

    script = Path(script)
    root_dir = Path(root_dir) if root_dir is not None else Path(__file__).resolve().parent
    files = [script] + module_closure(_package_imports(ast.parse(script.read_text()), package, package),
                                      package, root_dir=root_dir)
    h = hashlib.sha256()
    for path in files:
        name = str(path.relative_to(root_dir)) if path.is_relative_to(root_dir) else path.name
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
