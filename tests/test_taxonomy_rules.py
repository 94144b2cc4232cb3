"""Taxonomy stage: fast scorer equals the reference scoring, protocol skipping, and the Snakemake
rules (ground truth, trees, scores, summary, figures, report) on a tiny synthetic workspace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from tasksim import tasks
from tasksim import taxonomy as tx
from tasksim.similarity.registry import compute_similarity
from tasksim.similarity.rsa import rdm
from tasksim.taxonomy import groundtruth as gt
from tasksim.taxonomy import scoring

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "taskonomy"
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
T = list(tasks.PAPER_TASKS)
TREE = {"method": "single", "distance": "rows_euclidean", "optimal_ordering": True}
TAX_RULES = ["groundtruth", "reference_tree", "task_tree", "scores", "figure_target_scatter",
             "summary", "figures_summary", "figure_svcca_vs_attribution"]


def _need_shared() -> Path:
    if not (SHARED / "affinities" / "all_affinities_16k.pkl").is_file():
        pytest.skip(f"Taskonomy mirror not found at {SHARED} (../shared/taskonomy beside the checkout)")
    return SHARED


@pytest.fixture(scope="module")
def truth():
    src = _need_shared()
    g16 = gt.load_matrix(src, "affinity", "16k")
    return {"attribution": g16, "dds_affinity": gt.load_matrix(src, "affinity", "base"),
            "dds_wins_vs_pixels": gt.load_matrix(src, "wins_vs_pixels", "16k")}


def _block_similarity(names, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    g = [tasks.group(n) or n for n in names]
    s = np.array([[0.8 if a == b else 0.2 for b in g] for a in g]) + rng.normal(0, noise, (len(g),) * 2)
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    return pd.DataFrame(s, index=names, columns=names)


@pytest.mark.shared
def test_fast_scorer_equals_reference_scoring(truth):
    ref = tx.reference_tree(truth["attribution"])
    p = tx.define_protocols(T, truth, reference=ref[:2])
    fast = tx.FastScorer(T, p, TREE)
    for seed in range(3):
        sim = _block_similarity(T, seed, noise=0.3)
        a, b = fast(sim.to_numpy()), tx.score_matrix(sim, p, TREE)
        assert set(a) == set(b)
        assert max(abs(a[k] - b[k]) for k in b) < 1e-12


@pytest.mark.shared
def test_oracle_and_permutation_p_values(truth):
    g = truth["attribution"]
    ref = tx.reference_tree(g)
    p = tx.define_protocols(T, {"attribution": g}, reference=ref[:2])
    sim = g.reindex(index=T, columns=T).fillna(0.0)  # the Taskonomy column itself
    res = tx.score_analysis(sim, p, TREE, n_images=10, similarity_fn=None, n_bootstrap=0,
                            n_permutations=30, seed=1)
    oracle = scoring.oracle_precision_at_k(g)
    assert res["protocols"]["attribution"]["precision"] == pytest.approx(list(oracle))
    assert res["scores"]["p@1"]["p_value"] == pytest.approx(1 / 31)
    assert res["scores"]["p@1"]["low"] is None and res["bootstrap"]["available"] is False
    assert res["protocols"]["dds_affinity"] == {"skipped": "ground truth not configured"}


@pytest.mark.shared
def test_subset_and_user_models_skip_protocols(truth):
    names = T[:10] + ["my_model"]
    ref = tx.reference_tree(truth["attribution"])
    p = tx.define_protocols(names, truth, reference=ref[:2])
    assert "20 paper tasks" in p.skipped["attribution"]
    assert "17 DDS tasks" in p.skipped["dds_affinity"]
    assert p.tree is not None and p.tree["common"] == [x for x in ref[1] if x in names]
    res = tx.score_analysis(_block_similarity(names), p, TREE, n_images=5, similarity_fn=None,
                            n_bootstrap=0, n_permutations=5)
    assert set(res["scores"]) == {"tree_cophenetic", "tree_adjusted_rand"}
    table = tx.summary_table([dict(res, method="rsa", layer="block1", n_images=5)])
    assert set(table["score"]) == set(tx.HEADLINE_SCORES)
    assert table.set_index("score").loc["p@1", "note"].startswith("needs the 20 paper tasks")


def test_minitaskonomy_protocols_from_csv(tmp_path):
    names = ["autoencoding", "denoising", "normal", "reshading", "class_object", "segment_semantic"]
    rng = np.random.default_rng(0)
    aff = pd.DataFrame(rng.uniform(0.01, 1, (len(names) + 1, len(names))),
                       index=names + ["pixels"], columns=names)
    aff.to_csv(tmp_path / "affinity.csv")
    g = tx.read_groundtruth_csv(tmp_path / "affinity.csv")
    z, labels, _ = tx.reference_tree(g, "minitaskonomy")
    assert labels == names
    p = tx.define_protocols(names, {"attribution": g, "dds_affinity": g}, "minitaskonomy", (z, labels))
    assert p.attribution["n_relevant"] == 4 and p.attribution["targets"] == names
    res = tx.score_analysis(_block_similarity(names), p, TREE, n_images=5, similarity_fn=None,
                            n_bootstrap=0, n_permutations=5)
    assert "p@5" in res["scores"] and "dds_affinity" in res["scores"]
    assert res["protocols"]["dds_wins_vs_pixels"]["skipped"]


@pytest.mark.parametrize("method", ["cka_linear", "cka_rbf", "svcca"])
def test_recompute_bootstrap_matches_method(tmp_path, method):
    rng = np.random.default_rng(1)
    names = ["a", "b", "c"]
    files = {}
    for n in names:
        files[n] = str(tmp_path / f"{n}.h5")
        with h5py.File(files[n], "w") as f:
            f.create_dataset("layers/l", data=rng.normal(size=(12, 4, 2, 2)).astype(np.float32))
    feats = []
    for n in names:
        with h5py.File(files[n]) as f:
            feats.append(f["layers/l"][...])
    opts = {"rbf_threshold": 0.5} if method == "cka_rbf" else {}
    if method == "svcca":
        opts = {"keep": 0.99, "conv_mode": "spatial_mean"}
    s, _ = compute_similarity(method, feats, **opts)
    sf = tx.SimilarityFile(pd.DataFrame(s, index=names, columns=names), {"n_images": 12})
    fn, kind, reason = tx.bootstrap_source(method, names, sf, activation_files=files, layer="l",
                                           options=opts)
    assert kind == ("grams" if method.startswith("cka") else "recompute") and not reason
    np.testing.assert_allclose(fn(np.arange(12)).to_numpy(), s, atol=1e-6)
    idx = np.array([0, 0, 1, 2, 3, 5, 5, 6, 7, 8, 9, 11])
    again, _ = compute_similarity(method, [x[idx] for x in feats], **opts)
    np.testing.assert_allclose(fn(idx).to_numpy(), again, atol=1e-6)
    fn, _, reason = tx.bootstrap_source(method, names, sf, activation_files=files, layer="l",
                                        options=opts, max_mb=0) if method == "svcca" else (None, 0, "x")
    assert fn is None and reason


# ------------------------------------------------------------------------------------------------
# the rules on a synthetic workspace

N_IMAGES = 16


def _str(f, name, values):
    f.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype("utf-8"))


def _write_similarity(res, method, layer, matrix, per_image=None, options=None):
    d = res / "similarity" / method
    d.mkdir(parents=True, exist_ok=True)
    with h5py.File(d / f"{layer}.h5", "w") as f:
        f.create_dataset("similarity", data=np.asarray(matrix, dtype=np.float64))
        _str(f, "models", T)
        if per_image is not None:
            f.create_dataset("per_image", data=per_image.astype(np.float32))
        f.attrs.update(method=method, layer=layer, probe_sha256="0" * 64, n_images=N_IMAGES,
                       options=json.dumps(options or {}))
    pd.DataFrame(matrix, index=T, columns=T).to_csv(d / f"{layer}.csv")


def _workspace(tmp: Path) -> Path:
    """Synthetic activations (group-structured), RDMs and similarity files of the 20 tasks."""
    rng = np.random.default_rng(0)
    res = tmp / "results"
    groups = {g: rng.normal(size=(N_IMAGES, 8, 3, 3)) for g in tasks.GROUPS}
    acts = {t: groups[tasks.group(t)] + 0.5 * rng.normal(size=(N_IMAGES, 8, 3, 3)) for t in T}
    (res / "activations").mkdir(parents=True)
    (res / "rdms").mkdir()
    for t in T:
        with h5py.File(res / "activations" / f"{t}.h5", "w") as f:
            f.create_dataset("layers/encoder_output", data=acts[t].astype(np.float32))
    for t in T:
        with h5py.File(res / "rdms" / f"{t}.h5", "w") as f:
            f.create_dataset("rdms/encoder_output",
                             data=rdm(acts[t].reshape(N_IMAGES, -1)).astype(np.float32))
    feats = [acts[t] for t in T]
    s, _ = compute_similarity("rsa", [a.reshape(N_IMAGES, -1) for a in feats])
    _write_similarity(res, "rsa", "encoder_output", s, options={"comparison": "spearman"})
    s, _ = compute_similarity("svcca", feats, keep=0.99, conv_mode="spatial_mean")
    _write_similarity(res, "svcca", "encoder_output", s)
    maps = np.stack([a.reshape(N_IMAGES, -1) for a in feats])  # [M, N, D]
    maps /= np.linalg.norm(maps, axis=2, keepdims=True)
    cos = np.einsum("mnd,knd->mkn", maps, maps)
    _write_similarity(res, "attribution_saliency", "input", cos.mean(axis=2), per_image=cos)
    cfg = {
        "results_dir": "results", "data_dir": "data",
        "probe": {"name": "synthetic", "source": "generated", "n_images": N_IMAGES},
        "similarity": {"methods": ["rsa", "attribution_saliency", "svcca"],
                       "rsa": {"layers": ["encoder_output"]}, "cca": {"layers": ["encoder_output"]},
                       "cka": {"layers": ["encoder_output"]}},
        "taxonomy": {"groundtruth_source": str(SHARED), "n_bootstrap": 20,
                     "n_bootstrap_recompute": 4, "n_permutations": 20},
    }
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp


def _snakemake(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp), "--configfile",
           str(tmp / "config.yaml"), "--cores", "2", "--allowed-rules", *TAX_RULES, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)


@pytest.mark.shared
def test_taxonomy_rules_end_to_end(tmp_path):
    _need_shared()
    ws = _workspace(tmp_path)
    targets = ["results/scores/summary.csv", "results/figures/precision_recall_at_k.png",
               "results/figures/svcca_vs_attribution.pdf", "results/trees/taskonomy.nwk",
               "results/figures/heatmaps/rsa/encoder_output.png",
               "results/figures/target_scatter/rsa/encoder_output.png",
               "results/groundtruth/wins_vs_task_1k.csv"]
    run = _snakemake(ws, *targets)
    assert run.returncode == 0, run.stderr[-4000:]
    res = ws / "results"
    for kind in gt.KINDS:
        for variant in gt.VARIANTS:
            assert (res / "groundtruth" / f"{kind}_{variant}.csv").is_file()
    for ext in ("nwk", "json"):
        assert (res / "trees" / "rsa" / f"encoder_output.{ext}").is_file()
    for kind in ("trees", "heatmaps", "target_scatter"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / kind / "rsa" / f"encoder_output.{ext}").stat().st_size > 1000
    for m, layer in [("rsa", "encoder_output"), ("attribution_saliency", "input"),
                     ("svcca", "encoder_output")]:
        s = json.loads((res / "scores" / m / f"{layer}.json").read_text())
        assert s["bootstrap"]["available"], s["bootstrap"]
        assert s["bootstrap"]["max_abs_diff_full_sample"] < 1e-5  # bootstrap rebuilds the matrix
        for key in tx.HEADLINE_SCORES:
            e = s["scores"][key]
            assert e["low"] <= e["high"] and 0 < e["p_value"] <= 1
        assert len(s["protocols"]["attribution"]["precision"]) == 19
    table = pd.read_csv(res / "scores" / "summary.csv")
    assert len(table) == 3 * len(tx.HEADLINE_SCORES)
    assert set(table["method"]) == {"rsa", "attribution_saliency", "svcca"}
    assert "| rsa | encoder_output | p@1 |" in (res / "scores" / "summary.md").read_text()
    for name in ("precision_recall_at_k", "dds_correlations", "tree_agreement", "svcca_vs_attribution"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"{name}.{ext}").stat().st_size > 1000
    # group-structured features: the block-structured tree agrees with Taskonomy's grouping
    s = json.loads((res / "scores" / "rsa" / "encoder_output.json").read_text())
    assert s["scores"]["tree_adjusted_rand"]["estimate"] > 0.3
    report = _snakemake(ws, "--report", str(ws / "report.html"), *targets)
    assert report.returncode == 0, report.stderr[-4000:]
    html = (ws / "report.html").read_text(errors="replace")
    assert "precision_recall_at_k.png" in html and "summary.csv" in html
