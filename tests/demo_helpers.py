"""The CI-size demo (config/demo-ci.yaml) as the tests run it (fixture ``demo_ci_local`` in
conftest.py; the Slurm test runs it again through profiles/slurm)."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def demo_ci_config(root: Path) -> Path:
    """config/demo-ci.yaml with data and results under ``root`` (written to root/demo-ci.yaml).

    The Taskonomy comparison reads ../shared/taskonomy when it exists (offline) and is switched
    off otherwise."""
    cfg = yaml.safe_load((REPO / "config" / "demo-ci.yaml").read_text())
    cfg["data_dir"], cfg["results_dir"] = str(root / "data"), str(root / "results")
    gt = SHARED / "taskonomy"
    if (gt / "SHA256SUMS").exists():
        cfg.setdefault("taxonomy", {})["groundtruth_source"] = str(gt)
    else:
        cfg["minitaskonomy"]["compare_taskonomy"] = False
    root.mkdir(parents=True, exist_ok=True)
    path = root / "demo-ci.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# A smaller universe for the Slurm run of the whole pipeline: every stage and rule of the demo,
# but four tasks (two related pairs) and few scenes and epochs, so that the job count, not the
# compute, is what the cluster test exercises.  The test runs it locally too and compares.
SLURM_DEMO = {
    "minitaskonomy": {"n_train": 300, "n_transfer": 100, "n_test": 100, "epochs": 1,
                      "transfer_epochs": 1,
                      "tasks": ["autoencoding", "denoising", "depth_zbuffer", "depth_euclidean"]},
    "probe": {"n_images": 40},
    "taxonomy": {"n_bootstrap": 20, "n_permutations": 50, "n_clusters": 2},
    "transferability": {"estimators": ["logme"], "n_permutations": 50, "n_bootstrap": 3},
}


def slurm_demo_config(root: Path) -> Path:
    """``demo_ci_config`` made smaller (``SLURM_DEMO``), written to root/demo-slurm.yaml."""
    cfg = yaml.safe_load(demo_ci_config(root).read_text())
    for section, values in SLURM_DEMO.items():
        cfg.setdefault(section, {}).update(values)
    path = root / "demo-slurm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
