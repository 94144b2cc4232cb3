"""Mini-Taskonomy pipeline: the demo DAG (config/demo.yaml) and the CI-size run
(config/demo-ci.yaml) end to end, with the scientific check against the random-encoder baseline."""

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
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
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
    assert counts["mt_head_probe"] == 2  # the categorical heads: class_object, segment_semantic
    assert counts["extract_activations"] == n_tasks
    assert "download_weights" not in counts  # weights come from the training rule
    for rule in ("rsa_similarity", "scores", "reference_tree", "summary"):
        assert counts.get(rule, 0) >= 1, rule


@pytest.mark.parametrize("config", ["config.yaml", "standin.yaml"])
def test_taskonomy_configs_do_not_run_minitaskonomy(config, tmp_path):
    res = _snakemake("-n", "--configfile", str(ROOT / "config" / config), "-d", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    counts = _job_counts(res.stdout)
    assert counts and not any(r in counts for r in MT_RULES)


@pytest.mark.slow
def test_ci_size_demo_end_to_end_beats_random_encoders(demo_ci_local, tmp_path):
    """The CI-size Mini-Taskonomy DAG runs end to end; RSA between the trained encoders predicts
    the measured transfer far better than RSA between random encoders of the same architecture."""
    import h5py
    import pandas as pd

    from tasksim.minitaskonomy.check import random_encoder_features, score_against_affinity
    from tasksim.similarity.registry import compute_similarity
    from tasksim.taxonomy import read_similarity

    root, cfg_path = demo_ci_local
    cfg = yaml.safe_load(cfg_path.read_text())
    tasks = cfg["minitaskonomy"]["tasks"]
    data, results = root / cfg["data_dir"], root / cfg["results_dir"]

    aff = pd.read_csv(data / "minitaskonomy" / "affinity.csv", index_col=0)
    assert list(aff.columns) == tasks
    assert list(aff.index) == tasks + ["pixels", "random"]
    assert (aff.sum(axis=0) - 1).abs().max() < 1e-6
    wins = pd.read_csv(data / "minitaskonomy" / "wins_vs_pixels.csv", index_col=0)
    assert wins.shape == aff.shape
    for t in tasks:
        assert (data / "weights" / f"{t}.pth").exists()
        line = (data / "minitaskonomy" / "encoders" / f"{t}.sha256").read_text().split()
        assert (data / "minitaskonomy" / "encoders" / line[1]).exists()
    assert (results / "scores" / "summary.csv").exists()
    report = tmp_path / "report.html"
    rep = _snakemake("--configfile", str(cfg_path), "-d", str(root), "--report", str(report), timeout=600)
    assert rep.returncode == 0 and report.stat().st_size > 100_000, rep.stderr[-3000:]
    if cfg["minitaskonomy"].get("compare_taskonomy", True):
        comp = pd.read_csv(results / "scores" / "taskonomy_comparison.csv")
        assert comp.matrix.iloc[0] == "measured mini affinity" and comp.n_targets.iloc[0] >= 9

    # label-based transferability: every estimator's matrix and scores; one beats chance
    import json

    from tasksim.config import resolve
    from tasksim.transferability.files import read_matrix

    tr = resolve(cfg)["transferability"]
    best_p, best = 1.0, None
    n_scored = n_intervals = 0
    for est in tr["estimators"]:
        for layer in tr["layers"]:
            m = read_matrix(results / "transferability" / est / f"{layer}.h5")
            assert list(m.matrix.index) == tasks and list(m.matrix.columns) == tasks, est
            assert m.bootstrap is not None and m.bootstrap.shape == (tr["n_bootstrap"], len(tasks), len(tasks))
            sc = json.loads((results / "transferability" / "scores" / est / f"{layer}.json").read_text())
            p = sc["without_own_entry"]["p_value"]["spearman"]
            if p is not None and p < best_p:
                best_p, best = p, (est, layer, sc["without_own_entry"])
            if sc["without_own_entry"]["mean"]["spearman"] is not None:
                n_scored += 1
                iv = sc["without_own_entry"]["interval"]["spearman"]
                if iv is not None:  # None: every replicate's columns constant (GBC saturating at N < D)
                    n_intervals += 1
                    assert iv[0] <= iv[1], (est, iv)
    assert best_p < 0.05, best_p
    assert n_intervals >= n_scored - 1, (n_intervals, n_scored)
    # LEEP and NCE read the categorical heads (class_object, segment_semantic where configured):
    # finite in those sources' rows wherever the target's labels apply, NaN with the reason elsewhere
    import numpy as np

    from tasksim.minitaskonomy.heads import categorical_head_tasks
    from tasksim.targets.store import targets_info

    kinds = targets_info(data / "targets" / f"{cfg['probe']['name']}.h5")["tasks"]
    head_tasks = categorical_head_tasks(tasks)
    for est in (e for e in tr["estimators"] if e in ("leep", "nce")):
        for layer in tr["layers"]:
            m = read_matrix(results / "transferability" / est / f"{layer}.h5")
            for s in tasks:
                row = m.matrix.loc[s].to_numpy(dtype=float)
                if s in head_tasks:
                    assert (data / "minitaskonomy" / "heads" / f"{s}_probe.h5").exists(), s
                    applies = np.array([kinds[t] != "dense_instance" for t in m.matrix.columns])
                    assert np.isfinite(row[applies]).all() and np.isnan(row[~applies]).all(), (est, s, row)
                else:
                    assert np.isnan(row).all(), (est, s, row)
                    assert all("no categorical head" in m.not_applicable[(s, t)] for t in tasks), (est, s)
    comparison = pd.read_csv(results / "transferability" / "comparison.csv", keep_default_na=False,
                             na_values={c: [""] for c in ("spearman", "spearman_low", "spearman_high")})
    assert set(comparison.method) >= set(tr["estimators"]) | {"rsa", "noise ceiling (split halves)",
                                                             "popularity (no model)"}
    ceiling = comparison.set_index("method").loc["noise ceiling (split halves)", "spearman"]
    assert ceiling > best[2]["mean"]["spearman"] - 0.1, (ceiling, best)
    # the label-free rows have intervals from the estimators' resamples too (RSA from its RDMs)
    rsa_rows = comparison[comparison.method == "rsa"]
    assert rsa_rows[["spearman_low", "spearman_high"]].notna().all().all(), rsa_rows
    assert (rsa_rows.spearman_low < rsa_rows.spearman_high).all(), rsa_rows

    trained = read_similarity(results / "similarity" / "rsa" / "encoder_output.h5").matrix
    assert list(trained.index) == tasks
    with h5py.File(data / "probe" / f"{cfg['probe']['name']}.h5", "r") as f:
        images = f["images"][()]
    feats = random_encoder_features(images, tasks)
    rand, _ = compute_similarity("rsa", [feats[t] for t in tasks], names=tasks)
    rand = pd.DataFrame(rand, index=tasks, columns=tasks)
    for own_entry in (True, False):
        s_t = score_against_affinity(trained, aff, 200, own_entry=own_entry)
        s_r = score_against_affinity(rand, aff, 0, own_entry=own_entry)
        assert s_t["score"] - s_r["score"] >= 0.4, (own_entry, s_t, s_r)
        assert s_t["p_value"] < 0.02, s_t
    # chance level of the protocol without the own entry is 0
    assert abs(score_against_affinity(rand, aff, 0, own_entry=False)["score"]) < 0.3

    # the most significant estimator beats its own random-encoder floor: the same estimator on
    # the random encoders' features of the same probe images, scored the same way
    from tasksim.targets.store import read_targets, targets_info
    from tasksim.transferability.matrix import transferability_matrix
    from tasksim.transferability.stage import score_table

    est, layer, scored = best
    tfile = data / "targets" / f"{cfg['probe']['name']}.h5"
    targets = {t: read_targets(tfile, t) for t in targets_info(tfile)["tasks"]}
    rand_m = transferability_matrix(feats, targets, est, dict(tr["options"].get(est, {})), grid=tr["grid"],
                                    levels=tr["levels"], sources=tasks)
    floor = score_table(rand_m, aff, n_permutations=0, seed=0)["without_own_entry"]["mean"]["spearman"]
    assert scored["mean"]["spearman"] - (floor or 0.0) >= 0.2, (est, scored["mean"], floor)
