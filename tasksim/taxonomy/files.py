"""Files of the taxonomy stage: ground-truth CSVs (docs/data-layout.md, ``R/groundtruth/``) and
tree JSON (``R/trees/``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasksim.taxonomy import trees as _trees


def read_groundtruth_csv(path: str | Path) -> pd.DataFrame:
    """A source x target ground-truth CSV (index column = sources, header = targets)."""
    df = pd.read_csv(path, index_col=0)
    df.index = [str(x) for x in df.index]
    df.columns = [str(x) for x in df.columns]
    df.index.name, df.columns.name = "source", "target"
    return df.astype(float)


def tree_json(z: np.ndarray, labels: Sequence[str], **info: Any) -> str:
    """Node-link JSON of a tree (:func:`tasksim.taxonomy.trees.tree_to_json`) with the linkage matrix,
    leaf labels and ``info`` (linkage method, distance, ...) as graph attributes."""
    g = _trees.linkage_to_digraph(z, labels)
    g.graph.update(linkage=np.asarray(z, dtype=float).tolist(), labels=list(labels), **info)
    return _trees.tree_to_json(g)


def linkage_from_json(text: str) -> tuple[np.ndarray, list[str]]:
    """Linkage matrix and leaf labels stored by :func:`tree_json`."""
    g = _trees.tree_from_json(text)
    return np.asarray(g.graph["linkage"], dtype=float), list(g.graph["labels"])


