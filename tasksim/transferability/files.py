"""Files of the transferability stage (docs/data-layout.md, "Transferability"): one source's
estimates (a long CSV, one row per estimator x layer x target x bootstrap replicate) and, per
estimator and layer, the source x target matrix (HDF5 and CSV; the HDF5 file also holds the
bootstrap replicates' matrices). Only this module opens them.

A matrix may hold NaN, but only in a cell whose estimator does not apply (no categorical head,
a label kind the estimator is not defined for); every such cell carries its reason, and a NaN
without one is refused, so a failed computation is never stored as "not applicable".
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasksim.io import atomic_path, open_h5, read_str, str_dataset, versions

PathLike = str | os.PathLike[str]

#: Columns of a source file, in order.
#: ``replicate`` 0 is the estimate on all probe images, 1..B those on the bootstrap resamples.
ROW_COLUMNS = ("estimator", "layer", "replicate", "source", "target", "value", "not_applicable")
FORMAT = "tasksim-transferability-1"


@dataclass
class TransferabilityMatrix:
    """One estimator's source x target matrix at one layer."""

    matrix: pd.DataFrame  # index: sources, columns: targets; NaN where not applicable
    estimator: str
    layer: str
    not_applicable: dict[tuple[str, str], str] = field(default_factory=dict)
    probe_sha256: str = ""
    n_images: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    #: ``[B, sources, targets]``: the matrix on each bootstrap resample of the probe images (the
    #: same resamples for every source); ``None`` without bootstrap. NaN where not applicable and
    #: where a resample left an estimate undefined.
    bootstrap: np.ndarray | None = None


def write_source_rows(path: PathLike, rows: pd.DataFrame) -> None:
    """Write one source's estimates (columns :data:`ROW_COLUMNS`) atomically."""
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{os.fspath(path)}: rows lack column(s) {missing}")
    bad = rows[rows["value"].isna() & (rows["not_applicable"].fillna("") == "")]
    if len(bad):
        first = bad.iloc[0]
        raise ValueError(f"{os.fspath(path)}: {first.estimator} of source {first.source} for target "
                         f"{first.target} is NaN without a reason; refusing to store it")
    with atomic_path(path, suffix=".csv") as tmp:
        rows.loc[:, list(ROW_COLUMNS)].to_csv(tmp, index=False, float_format="%.9g")


def read_source_rows(path: PathLike) -> pd.DataFrame:
    """One source file as written by :func:`write_source_rows`."""
    rows = pd.read_csv(path, keep_default_na=False, na_values={"value": ["", "nan", "NaN"]})
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{os.fspath(path)} is not a transferability source file: it lacks {missing}")
    rows["value"] = rows["value"].astype(float)
    rows["replicate"] = rows["replicate"].astype(int)
    return rows


def gather(rows: Sequence[pd.DataFrame], estimator: str, layer: str, sources: Sequence[str],
           targets: Sequence[str], replicate: int = 0) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """The source x target matrix of ``estimator`` at ``layer`` from source files' rows (all
    probe images: ``replicate`` 0; a bootstrap resample: 1..B).

    Every (source, target) cell must be present exactly once; a missing or repeated cell fails
    naming it."""
    table = pd.concat(rows, ignore_index=True)
    table = table[(table["estimator"] == estimator) & (table["layer"] == layer)
                  & (table["replicate"] == replicate)]
    out = pd.DataFrame(np.nan, index=pd.Index(list(sources), name="source"),
                       columns=pd.Index(list(targets), name="target"))
    seen: set[tuple[str, str]] = set()
    why: dict[tuple[str, str], str] = {}
    for r in table.itertuples(index=False):
        key = (str(r.source), str(r.target))
        if key[0] not in out.index or key[1] not in out.columns:
            continue
        if key in seen:
            raise ValueError(f"{estimator} {layer}: source {key[0]}, target {key[1]} appears twice")
        seen.add(key)
        out.loc[key[0], key[1]] = r.value
        if r.not_applicable:
            why[key] = str(r.not_applicable)
    absent = [(s, t) for s in out.index for t in out.columns if (s, t) not in seen]
    if absent:
        s, t = absent[0]
        raise ValueError(f"{estimator} {layer}: no estimate for source {s}, target {t}"
                         f"{f' in bootstrap replicate {replicate}' if replicate else ''} "
                         f"({len(absent)} cell(s) missing)")
    return out, why


def gather_bootstrap(rows: Sequence[pd.DataFrame], estimator: str, layer: str, sources: Sequence[str],
                     targets: Sequence[str]) -> np.ndarray | None:
    """``[B, sources, targets]``: the matrices of bootstrap replicates 1..B (:func:`gather`), or
    ``None`` when the rows hold no replicate. Every source must hold the same replicates."""
    table = pd.concat(rows, ignore_index=True)
    table = table[(table["estimator"] == estimator) & (table["layer"] == layer)]
    per_source = table.groupby("source")["replicate"].max()
    n = {int(v) for s, v in per_source.items() if s in set(sources)}
    if len(n) > 1:
        raise ValueError(f"{estimator} {layer}: the source files hold different numbers of bootstrap "
                         f"replicates ({', '.join(f'{s}: {int(v)}' for s, v in per_source.items())}); "
                         f"rerun their transferability_source jobs")
    b = n.pop() if n else 0
    if b == 0:
        return None
    return np.stack([gather(rows, estimator, layer, sources, targets, r)[0].to_numpy(dtype=np.float64)
                     for r in range(1, b + 1)])


def write_matrix(h5_path: PathLike, csv_path: PathLike, m: TransferabilityMatrix) -> None:
    """Write a source x target matrix as HDF5 and CSV (empty cells where not applicable)."""
    values = m.matrix.to_numpy(dtype=np.float64)
    for (i, s) in enumerate(m.matrix.index):
        for (j, t) in enumerate(m.matrix.columns):
            v = values[i, j]
            if np.isinf(v) or (np.isnan(v) and (s, t) not in m.not_applicable):
                raise ValueError(f"{os.fspath(h5_path)}: {m.estimator} {m.layer} of source {s} for "
                                 f"target {t} is {v} without a 'not applicable' reason; nothing written")
    if m.bootstrap is not None and np.shape(m.bootstrap)[1:] != values.shape:
        raise ValueError(f"{os.fspath(h5_path)}: bootstrap replicates of shape {np.shape(m.bootstrap)} "
                         f"do not match the {values.shape[0]} x {values.shape[1]} matrix; nothing written")
    with atomic_path(h5_path, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as f:
            f.create_dataset("scores", data=values)
            str_dataset(f, "sources", [str(s) for s in m.matrix.index])
            str_dataset(f, "targets", [str(t) for t in m.matrix.columns])
            if m.bootstrap is not None:
                f.create_dataset("bootstrap", data=np.asarray(m.bootstrap, dtype=np.float64))
            f.attrs.update({
                "format": FORMAT, "estimator": m.estimator, "layer": m.layer,
                "probe_sha256": m.probe_sha256, "n_images": int(m.n_images),
                "options": json.dumps(dict(m.options), sort_keys=True, default=str),
                "not_applicable": json.dumps([[s, t, r] for (s, t), r in sorted(m.not_applicable.items())]),
                "versions": json.dumps(versions()),
            })
    with atomic_path(csv_path, suffix=".csv") as tmp:
        m.matrix.to_csv(tmp, float_format="%.6f")


def read_matrix(path: PathLike, locking: bool | None = None) -> TransferabilityMatrix:
    """A matrix file written by :func:`write_matrix`."""
    with open_h5(path, "r", locking) as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)} is not a transferability matrix (format "
                             f"{f.attrs.get('format')!r})")
        frame = pd.DataFrame(f["scores"][()], index=pd.Index(read_str(f["sources"]), name="source"),
                             columns=pd.Index(read_str(f["targets"]), name="target"))
        why = {(s, t): r for s, t, r in json.loads(f.attrs["not_applicable"])}
        boot = f["bootstrap"][()] if "bootstrap" in f else None
        return TransferabilityMatrix(frame, str(f.attrs["estimator"]), str(f.attrs["layer"]), why,
                                     str(f.attrs["probe_sha256"]), int(f.attrs["n_images"]),
                                     json.loads(f.attrs["options"]), boot)


def describe_reasons(why: Mapping[tuple[str, str], str]) -> list[str]:
    """The distinct 'not applicable' reasons, each with how many cells it covers."""
    counts: dict[str, int] = {}
    for r in why.values():
        counts[r] = counts.get(r, 0) + 1
    return [f"{n} cell(s): {r}" for r, n in sorted(counts.items(), key=lambda kv: -kv[1])]
