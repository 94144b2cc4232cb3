"""Mini-Taskonomy pipeline (issue 6): DAG of config/minitaskonomy.yaml and a tiny real run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
MT_RULES = ("mt_render", "mt_train_encoder", "mt_transfer_source", "mt_affinity")


def _snakemake(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _job_counts(stdout: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    in_stats = False
    for line in stdout.splitlines():
        if line.startswith("Job stats:"):
            in_stats = True
            continue
        parts = line.split()
        if in_stats and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_dry_run_lists_minitaskonomy_rules(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "minitaskonomy.yaml").read_text())
    cfg["data_dir"], cfg["results_dir"] = str(tmp_path / "data"), str(tmp_path / "results")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = _snakemake("-n", "--configfile", str(tmp_path / "c.yaml"), "-d", str(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    counts = _job_counts(res.stdout)
    n_tasks = len(cfg["minitaskonomy"].get("tasks", range(17)))
    assert counts["mt_render"] == 3
    assert counts["mt_train_encoder"] == n_tasks
    assert counts["mt_transfer_source"] == n_tasks + 2  # + pixels, random
    assert counts["mt_affinity"] == 1
    assert counts["extract_activations"] == n_tasks
    assert "download_weights" not in counts  # weights come from the training rule
    for rule in ("rsa_similarity", "scores", "reference_tree", "summary"):
        assert counts.get(rule, 0) >= 1, rule


def test_default_configs_do_not_run_minitaskonomy():
    res = _snakemake("-n", "--configfile", str(ROOT / "config" / "demo.yaml"))
    assert res.returncode == 0, res.stderr[-3000:]
    counts = _job_counts(res.stdout)
    assert not any(r in counts for r in MT_RULES)


def tiny_config(tmp_path: Path) -> Path:
    cfg = {
        "data_dir": str(tmp_path / "data"),
        "results_dir": str(tmp_path / "results"),
        "minitaskonomy": {"enabled": True, "seed": 0, "resolution": 32, "n_train": 48,
                          "n_transfer": 24, "n_test": 24, "epochs": 1, "transfer_epochs": 1,
                          "threads": 1, "mem_mb": 1000,
                          "tasks": ["autoencoding", "depth_zbuffer", "normal", "edge_texture"]},
        "preprocessing": {"resolution": 32},
        "probe": {"name": "tiny_scenes", "source": "generated", "n_images": 12, "seed": 1},
        "extraction": {"batch_size": 12, "precision": "fp32", "channels_last": False, "threads": 1,
                       "mem_mb": 1000},
        "similarity": {"methods": ["rsa"], "rsa": {"layers": ["encoder_output"]}},
        "taxonomy": {"n_bootstrap": 0, "n_bootstrap_recompute": 0, "n_permutations": 20,
                     "n_clusters": 2},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_tiny_minitaskonomy_run(tmp_path):
    import h5py
    import pandas as pd

    cfg = tiny_config(tmp_path)
    res = _snakemake("--cores", "2", "--configfile", str(cfg), "-d", str(tmp_path), timeout=1500)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-6000:]
    tasks = ["autoencoding", "depth_zbuffer", "normal", "edge_texture"]
    aff = pd.read_csv(tmp_path / "data" / "minitaskonomy" / "affinity.csv", index_col=0)
    assert list(aff.columns) == tasks
    assert list(aff.index) == tasks + ["pixels", "random"]
    assert (aff.sum(0) - 1).abs().max() < 1e-6
    wins = pd.read_csv(tmp_path / "data" / "minitaskonomy" / "wins_vs_pixels.csv", index_col=0)
    assert wins.shape == aff.shape
    for t in tasks:
        assert (tmp_path / "data" / "weights" / f"{t}.pth").exists()
        line = (tmp_path / "data" / "minitaskonomy" / "encoders" / f"{t}.sha256").read_text().split()
        assert (tmp_path / "data" / "minitaskonomy" / "encoders" / line[1]).exists()
    sim = tmp_path / "results" / "similarity" / "rsa" / "encoder_output.h5"
    assert sim.exists()
    with h5py.File(sim) as f:
        assert f["similarity"].shape == (len(tasks), len(tasks))
        assert [m.decode() if isinstance(m, bytes) else m for m in f["models"][()]] == tasks
    assert (tmp_path / "results" / "scores" / "rsa" / "encoder_output.json").exists()
