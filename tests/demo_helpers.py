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
