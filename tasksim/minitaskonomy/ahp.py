"""Win rates and AHP normalisation (Taskonomy, Zamir et al. 2018, Sec. 3.3) in miniature."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tasksim.io import atomic_path
from tasksim.tasks import is_known, pickle_name


def win_rate_matrix(losses: np.ndarray) -> np.ndarray:
    """Pairwise win rates from per-image test losses ``[sources, images]``.

    ``W[a, b]`` = fraction of images on which source ``a`` has the lower loss than ``b`` (ties
    count one half), so ``W + W.T == 1`` and the diagonal is 0.5.
    """
    lo = np.asarray(losses, dtype=np.float64)
    less = (lo[:, None, :] < lo[None, :, :]).mean(-1)
    ties = (lo[:, None, :] == lo[None, :, :]).mean(-1)
    return less + 0.5 * ties


def ahp_affinity(win_rates: np.ndarray, clip: float = 1e-3) -> np.ndarray:
    """AHP weights of the sources of one target from their win-rate matrix.

    The ratio matrix ``W / (1 - W)`` (win rates clipped to ``[clip, 1 - clip]``) is reciprocal;
    its principal (Perron) eigenvector, normalised to sum 1, gives each source's affinity.
    For a consistent matrix ``W[a, b] = w_a / (w_a + w_b)`` it returns ``w / sum(w)`` exactly.
    """
    w = np.clip(np.asarray(win_rates, dtype=np.float64), clip, 1 - clip)
    ratio = w / (1.0 - w)
    vals, vecs = np.linalg.eig(ratio)
    v = np.abs(np.real(vecs[:, np.argmax(np.real(vals))]))
    return v / v.sum()


def affinity_frame(losses: dict[str, np.ndarray], sources: Sequence[str]) -> pd.DataFrame:
    """Source x target affinity DataFrame (each column sums to 1) from per-target losses
    ``{target: [sources, images]}`` with rows in the order of ``sources``."""
    cols = {t: ahp_affinity(win_rate_matrix(lo)) for t, lo in losses.items()}
    df = pd.DataFrame(cols, index=list(sources))
    df.index.name, df.columns.name = "source", "target"
    return df


def wins_vs_frame(losses: dict[str, np.ndarray], sources: Sequence[str], reference: str) -> pd.DataFrame:
    """Source x target win rates of every source against ``reference`` (e.g. ``pixels``)."""
    r = list(sources).index(reference)
    cols = {t: win_rate_matrix(lo)[:, r] for t, lo in losses.items()}
    df = pd.DataFrame(cols, index=list(sources))
    df.index.name, df.columns.name = "source", "target"
    return df


def _spelling(name: str) -> str:
    return pickle_name(name) if is_known(name) else name


def to_taskonomy_dict(df: pd.DataFrame) -> dict[str, np.float64]:
    """The frame in the form of the Taskonomy result pickles: ``{'<source>__<target>': float64}``
    with the pickles' task spellings (``rgb2depth``, ``segmentsemantic_rb``, ...); non-task
    sources (``pixels``, ``random``) keep their names."""
    return {f"{_spelling(s)}__{_spelling(t)}": np.float64(df.loc[s, t])
            for t in df.columns for s in df.index}


def write_affinity(df: pd.DataFrame, csv_path: str | os.PathLike[str],
                   pkl_path: str | os.PathLike[str] | None = None) -> Path:
    """Write the frame as CSV (canonical names) and optionally as a Taskonomy-style pickle
    (protocol 3, a dict of numpy.float64, readable by the restricted affinity unpickler)."""
    with atomic_path(csv_path, suffix=".csv") as tmp:
        df.to_csv(tmp, float_format="%.10g")
    if pkl_path is not None:
        with atomic_path(pkl_path, suffix=".pkl") as tmp:
            tmp.write_bytes(pickle.dumps(to_taskonomy_dict(df), protocol=3))
    return Path(csv_path)


def read_affinity_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a frame written by :func:`write_affinity`."""
    df = pd.read_csv(path, index_col=0)
    df.columns.name = "target"
    return df
