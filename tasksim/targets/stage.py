"""The targets stage's step (path in, path out), called by its rule script."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from tasksim.targets.minitaskonomy import minitaskonomy_targets
from tasksim.targets.store import write_targets

log = logging.getLogger(__name__)


def minitaskonomy_target_file(probe: str | os.PathLike[str], out: str | os.PathLike[str],
                              tasks: Sequence[str], locking: bool | None = None) -> None:
    """The rendered Mini-Taskonomy labels of every probe scene for ``tasks``, as one target file."""
    labels = minitaskonomy_targets(probe, tasks, locking)
    for t, item in labels.items():
        log.info("%s: %s labels %s", t, item.kind, tuple(item.values.shape))
    write_targets(out, labels, probe, locking)
