"""Mini-Taskonomy: an offline task universe with a measured transfer affinity.

Stages (each a public function with thin file I/O, for Snakemake rules):

1. :func:`tasksim.scenes.render_split` renders the train / transfer / test splits (HDF5).
2. :func:`train_task_encoder` trains one encoder per task and writes a zoo checkpoint
   ``<task>_encoder-<sha256>.pth`` (builder ``tasksim.minitaskonomy.models:build_encoder``) and
   the head trained with it (:func:`save_head`); the classifier heads' probabilities of the probe
   images are read by LEEP and NCE (:mod:`tasksim.minitaskonomy.heads`).
3. :func:`train_transfers` trains readouts from every frozen encoder (and the ``pixels`` and
   ``random`` baselines) to every target and writes the AHP affinity (CSV + Taskonomy-style pickle).
"""

from tasksim.minitaskonomy.ahp import (
                                       affinity_frame,
                                       ahp_affinity,
                                       read_affinity_csv,
                                       to_taskonomy_dict,
                                       win_rate_matrix,
                                       wins_vs_frame,
                                       write_affinity,
)
from tasksim.minitaskonomy.data import MINI_TASKS, TASK_SPECS
from tasksim.minitaskonomy.models import ENCODER_LAYERS, build_encoder
from tasksim.minitaskonomy.training import (
                                       BUILDER,
                                       load_encoder,
                                       load_head,
                                       save_encoder_checkpoint,
                                       save_head,
                                       train_encoder,
                                       train_task_encoder,
)
from tasksim.minitaskonomy.transfer import BASELINES, train_transfers, transfer_losses

__all__ = [
    "BASELINES", "BUILDER", "ENCODER_LAYERS", "MINI_TASKS", "TASK_SPECS", "affinity_frame",
    "ahp_affinity", "build_encoder", "load_encoder", "load_head", "read_affinity_csv",
    "save_encoder_checkpoint", "save_head", "to_taskonomy_dict", "train_encoder", "train_task_encoder",
    "train_transfers", "transfer_losses", "win_rate_matrix", "wins_vs_frame", "write_affinity",
]
