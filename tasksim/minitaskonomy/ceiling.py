"""Noise ceiling of the measured Mini-Taskonomy affinity: how well it agrees with itself.

The affinity is measured on a finite test set, so even a method that knew the true transfer
would not match it perfectly. Splitting the test images into two disjoint halves and building
the affinity from each half with the same procedure as the full one (per-image losses ->
pairwise win rates -> AHP, :func:`tasksim.minitaskonomy.ahp.affinity_frame`) gives two
independent measurements; scoring one against the other with the measures that score the methods
(per-target Spearman, weighted Kendall tau, Rel@1: :mod:`tasksim.taxonomy.scoring`) says how far a method
could get. The per-image losses are those the pipeline stores in ``transfer/losses.npz``
(``sources`` plus one ``[sources, N_test]`` array per target; :func:`read_losses`).

Each half has half the images, so its affinity is noisier than the full one and the split-half
agreement understates the reliability of the full measurement; ``spearman_brown`` gives the
usual correction of a split-half correlation, ``2 r / (1 + r)``, for the Spearman column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tasksim.minitaskonomy.ahp import affinity_frame
from tasksim.taxonomy import scoring as _sc

__all__ = ["read_losses", "split_images", "split_half_affinities", "noise_ceiling",
           "noise_ceiling_summary"]


def read_losses(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Sources and per-target losses ``{target: [sources, N_test]}`` of a ``losses.npz``."""
    with np.load(path) as z:
        sources = [str(s) for s in z["sources"]]
        return sources, {k: np.asarray(z[k]) for k in z.files if k != "sources"}


def split_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into two disjoint halves (sorted; the first has ``n // 2``)."""
    if n < 2:
        raise ValueError(f"need at least 2 test images to split, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def split_half_affinities(losses: Mapping[str, ArrayLike], sources: Sequence[str], *,
                          seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The AHP affinity (source x target) of each half of the test images.

    ``losses``: ``{target: [sources, N_test]}`` with rows in the order of ``sources``. The
    images are split by :func:`split_images` (the same split for every target with the same
    number of images), and each half goes through :func:`~tasksim.minitaskonomy.ahp.affinity_frame`,
    the procedure of the full affinity.
    """
    halves: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
    for t, lo in losses.items():
        lo = np.asarray(lo, dtype=np.float64)
        if lo.ndim != 2 or lo.shape[0] != len(sources):
            raise ValueError(f"losses of target {t} must be [{len(sources)} sources, images], got {lo.shape}")
        a, b = split_images(lo.shape[1], seed)
        halves[0][t], halves[1][t] = lo[:, a], lo[:, b]
    return affinity_frame(halves[0], sources), affinity_frame(halves[1], sources)


def noise_ceiling(losses: Mapping[str, ArrayLike], sources: Sequence[str], *,
                  score_sources: Sequence[str] | None = None, targets: Sequence[str] | None = None,
                  own_entry: bool = True, n_splits: int = 1, seed: int = 0,
                  baseline: str = "zero") -> pd.DataFrame:
    """Split-half agreement of the measured affinity, per target: the ceiling of a method's score.

    For each of ``n_splits`` seeded splits (seeds ``seed, seed + 1, ...``) the two half
    affinities of :func:`split_half_affinities` are scored against each other with
    :func:`tasksim.taxonomy.scoring.ranking_per_target`, in both directions (weighted tau and Rel@1 are
    not symmetric), and the values are averaged. ``score_sources``: the sources the methods are
    scored over (default ``sources``; the AHP step always uses all of ``sources``, as the full
    affinity does); ``targets`` (default: all), ``own_entry`` and ``baseline`` as in the scoring
    functions. Returns a DataFrame indexed by target with columns ``spearman``,
    ``weighted_tau``, ``rel_at_1`` and ``spearman_brown`` (``2 r / (1 + r)`` of the Spearman
    column).
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    score_sources = list(sources) if score_sources is None else list(score_sources)
    targets = list(losses) if targets is None else list(targets)
    runs = []
    for k in range(n_splits):
        a, b = split_half_affinities({t: losses[t] for t in targets}, sources, seed=seed + k)
        for method, truth in ((a, b), (b, a)):
            runs.append(_sc.ranking_per_target(method, truth, score_sources, targets=targets,
                                               own_entry=own_entry, baseline=baseline)
                        [list(_sc.RANKING_MEASURES)])
    out = pd.concat(runs, keys=range(len(runs))).groupby(level=1, sort=False).mean()   # NaN-skipping
    r = out["spearman"]
    out["spearman_brown"] = 2 * r / (1 + r)
    return out.rename_axis("target")


def noise_ceiling_summary(ceiling: pd.DataFrame) -> pd.DataFrame:
    """Mean over targets of each column of :func:`noise_ceiling` (rows = measures), with the
    number of targets it could be computed for, as :func:`tasksim.taxonomy.scoring.ranking_summary`."""
    return pd.DataFrame.from_dict({m: _sc.target_mean(ceiling[m])._asdict() for m in ceiling.columns},
                                  orient="index").rename_axis("measure")
