"""The Snakemake pipeline end to end: dry run of the real config offline, lint, and a small
stand-in run through every stage (extraction, all similarity methods, trees, scores, report)."""
import json
import os
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, SHARED, snakemake_exe


def _run(args, cwd=REPO, timeout=1800, env=None):
    proc = subprocess.run([snakemake_exe(), "-s", str(REPO / "Snakefile"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)
    return proc


# A user's method module: one function, declared once; nothing else of the pipeline is touched.
TOY_PLUGIN = """
import numpy as np
from tasksim.similarity.registry import load_source, register

@register("toy_norms", section="cka", bootstrap="recompute",
          description="Correlation of the models' per-image feature norms (a toy method)")
def toy_norms(features, power: float = 1.0, names=None):
    arrays = [np.asarray(load_source(f), dtype=float) for f in features]
    norms = [np.linalg.norm(a.reshape(len(a), -1), axis=1) ** power for a in arrays]
    return np.corrcoef(norms), {"method": "toy_norms", "power": power}
"""


def test_real_config_dry_run_needs_no_network(tmp_path):
    proc = _run(["-n", "--configfile", str(REPO / "config" / "config.yaml"), "-d", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for rule, count in [("download_weights", 20), ("extract_activations", 20), ("rdms", 20),
                        ("attribution_maps", 20), ("rsa_similarity", 5), ("probe_set", 1),
                        ("targets", 1), ("transferability_source", 20), ("transferability_matrix", 10),
                        ("transferability_scores", 10), ("method_comparison", 1)]:
        assert any(line.split()[:2] == [rule, str(count)] for line in out.splitlines()), (rule, out[-2000:])


def test_a_users_labelled_task_ranks_the_zoo_without_scores(tmp_path):
    """A folder of the user's images and a CSV of their classes: the estimators rank every zoo
    encoder for that task (matrices only: there is no transfer ground truth to score them)."""
    cfg = tmp_path / "mine.yaml"
    (tmp_path / "imgs").mkdir()
    (tmp_path / "classes.csv").write_text("image,label\n")
    cfg.write_text(yaml.safe_dump({
        "tasks": ["normal", "depth_zbuffer"], "probe": {"source": "folder", "folder": {"path": str(tmp_path / "imgs")}},
        "targets": {"source": "user", "user": {"task": "pets", "class_csv": str(tmp_path / "classes.csv")}}}))
    proc = _run(["-n", "--configfile", str(cfg), "-d", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs.get("targets") == "1" and jobs.get("transferability_source") == "2", proc.stdout[-2000:]
    assert jobs.get("transferability_matrix") == "10"
    assert "transferability_scores" not in jobs and "method_comparison" not in jobs


@pytest.mark.parametrize("config", ["demo.yaml", "standin.yaml"])
def test_lint_is_clean(config):
    proc = _run(["--lint", "--configfile", str(REPO / "config" / config)])
    assert proc.returncode == 0 and "good condition" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_invalid_config_fails_at_once_naming_the_task(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"tasks": ["normal", "rgb2dpeth"]}))
    proc = _run(["-n", "--configfile", str(cfg), "-d", str(tmp_path)])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "rgb2dpeth" in out and "depth_zbuffer" in out


@pytest.mark.slow
@pytest.mark.shared
def test_standin_pipeline_end_to_end(tmp_path):
    gt = SHARED / "taskonomy"
    if not gt.is_dir():
        pytest.skip(f"{gt} not found: the taxonomy stage needs the Taskonomy ground truth offline")
    tasks = ["normal", "depth_zbuffer", "reshading", "edge_texture", "autoencoding", "denoising"]
    cfg = {
        "data_dir": str(tmp_path / "data"), "results_dir": str(tmp_path / "results"),
        "tasks": tasks,
        "standin": {"enabled": True, "seed": 1, "perturbation": 0.2,
                    "groups": {"g3d": tasks[:3], "g2d": tasks[3:]}},
        "probe": {"name": "scenes", "source": "generated", "n_images": 6},
        "extraction": {"batch_size": 6, "precision": "int8"},  # the demo tests run bf16
        "similarity": {"methods": ["rsa", "attribution_gradxinput", "svcca", "cka_linear"],
                       "rsa": {"layers": ["block4", "encoder_output"]},
                       "attribution": {"batch_size": 6}},
        "taxonomy": {"groundtruth_source": str(gt), "n_bootstrap": 20, "n_bootstrap_recompute": 5,
                     "n_permutations": 20},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = _run(["--cores", "2", "--configfile", str(path), "-d", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-5000:]
    res = tmp_path / "results"
    # every activation file has the same rows, and the grouped stand-ins are recovered
    ids = None
    for t in tasks:
        with h5py.File(res / "activations" / f"{t}.h5") as f:
            assert ids is None or list(f["ids"][()]) == ids
            ids = list(f["ids"][()])
            assert f.attrs["compute_dtype"].startswith("int8 residual branches")
    sim = pd.read_csv(res / "similarity" / "rsa" / "encoder_output.csv", index_col=0)
    assert list(sim.index) == tasks and np.allclose(np.diag(sim), 1)
    within = np.mean([sim.loc[a, b] for g in (tasks[:3], tasks[3:]) for a in g for b in g if a != b])
    across = np.mean([sim.loc[a, b] for a in tasks[:3] for b in tasks[3:]])
    assert within > across
    for m, layer in [("attribution_gradxinput", "input"), ("svcca", "encoder_output"),
                     ("cka_linear", "encoder_output"), ("rsa", "block4")]:
        with h5py.File(res / "similarity" / m / f"{layer}.h5") as f:
            assert f["similarity"].shape == (6, 6)
            if m.startswith("attribution"):
                assert f["per_image"].shape == (6, 6, 6)
    assert (res / "scores" / "summary.csv").exists() and (res / "trees" / "rsa" / "encoder_output.nwk").exists()
    json.loads((res / "scores" / "rsa" / "encoder_output.json").read_text())
    # re-running does nothing: every output is complete
    again = _run(["--cores", "2", "--configfile", str(path), "-d", str(tmp_path), "-n"])
    assert "Nothing to be done" in again.stdout + again.stderr
    # reruns mean something: thread counts and the config file's name change no result ...
    same = dict(cfg, extraction={**cfg["extraction"], "threads": 1},
                similarity={**cfg["similarity"], "attribution": {"batch_size": 6, "threads": 1}},
                taxonomy={**cfg["taxonomy"], "threads": 2})
    copy = tmp_path / "renamed-copy.yaml"
    copy.write_text(yaml.safe_dump(same))
    again = _run(["--cores", "2", "--configfile", str(copy), "-d", str(tmp_path), "-n"])
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
    # ... an RSA option reruns RSA and what depends on it, nothing upstream
    changed = dict(cfg, similarity={**cfg["similarity"], "rsa": {**cfg["similarity"]["rsa"], "comparison": "pearson"}})
    path2 = tmp_path / "pearson.yaml"
    path2.write_text(yaml.safe_dump(changed))
    dry = _run(["--cores", "2", "--configfile", str(path2), "-d", str(tmp_path), "-n"])
    jobs = {line.split()[0] for line in dry.stdout.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert {"rsa_similarity", "scores", "summary"} <= jobs, dry.stdout[-3000:]
    assert not jobs & {"extract_activations", "rdms", "attribution_maps", "feature_similarity",
                       "probe_set", "download_weights"}, jobs
    report = tmp_path / "report.html"
    rep = _run(["--configfile", str(path), "-d", str(tmp_path), "--report", str(report)])
    assert rep.returncode == 0 and report.stat().st_size > 10000, rep.stderr[-3000:]

    # adding a method is one function plus its declaration: a toy method from the user's own
    # module runs through the similarity, tree and score stages, bootstrap included
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_plugin.py").write_text(TOY_PLUGIN)
    toy = dict(cfg, similarity={**cfg["similarity"], "plugins": ["toy_plugin"],
                                "methods": [*cfg["similarity"]["methods"], "toy_norms"]})
    path3 = tmp_path / "toy.yaml"
    path3.write_text(yaml.safe_dump(toy))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "plugins")}
    run = _run(["--cores", "2", "--configfile", str(path3), "-d", str(tmp_path)], env=env)
    assert run.returncode == 0, run.stderr[-5000:]
    scores = json.loads((res / "scores" / "toy_norms" / "encoder_output.json").read_text())
    assert scores["method"] == "toy_norms" and scores["bootstrap"]["kind"] == "recompute"
    with h5py.File(res / "similarity" / "toy_norms" / "encoder_output.h5") as f:
        assert f["similarity"].shape == (6, 6)
    assert "toy_norms" in set(pd.read_csv(res / "scores" / "summary.csv")["method"])
    assert (res / "trees" / "toy_norms" / "encoder_output.nwk").exists()
