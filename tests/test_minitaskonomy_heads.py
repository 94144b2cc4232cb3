"""Mini-Taskonomy's categorical heads: the weights kept by training, their probabilities of the
probe images, and LEEP / NCE reading them in the transferability stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasksim import scenes
from tasksim.io import open_h5, read_str, sha256_file, str_dataset
from tasksim.minitaskonomy.data import MINI_TASKS, TASK_SPECS, model_input
from tasksim.minitaskonomy.heads import (
    READINGS,
    categorical_head_tasks,
    head_probabilities,
    read_head_probabilities,
)
from tasksim.minitaskonomy.models import build_encoder
from tasksim.minitaskonomy.stage import encoder_seed, head_probe_file, train_encoder_files
from tasksim.minitaskonomy.training import build_head, load_encoder, load_head, train_encoder, train_task_encoder
from tasksim.probe import build_probe_set
from tasksim.probe.preprocess import network_input
from tasksim.targets import ProbeMismatchError
from tasksim.targets.stage import minitaskonomy_target_file
from tasksim.targets.store import read_targets
from tasksim.transferability import files
from tasksim.transferability.estimators import dense_to_cells, leep, mean_over_cells, nce
from tasksim.transferability.stage import source_estimates

HEAD_TASKS = ("class_object", "segment_semantic")


def _softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_the_categorical_heads_are_the_cross_entropy_tasks():
    assert categorical_head_tasks(MINI_TASKS) == ["segment_semantic", "class_object"]  # MINI_TASKS order
    assert categorical_head_tasks(["depth_zbuffer", "segment_semantic", "normal"]) == ["segment_semantic"]
    assert {TASK_SPECS[t].kind for t in HEAD_TASKS} == {"global", "dense"}


@pytest.fixture
def modules():
    torch.manual_seed(3)
    x = torch.rand(10, 3, 32, 32) * 2 - 1
    return build_encoder().eval(), x


def test_global_head_probabilities_are_the_softmax_of_its_logits(modules):
    enc, x = modules
    head = build_head("class_object").eval()
    p = head_probabilities(enc, head, x)
    assert p.shape == (10, TASK_SPECS["class_object"].out) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    with torch.no_grad():
        logits = head(enc(x)).numpy().astype(np.float64)
    np.testing.assert_allclose(p, _softmax(logits), atol=1e-6)
    # batching changes nothing
    np.testing.assert_allclose(head_probabilities(enc, head, x, batch_size=3), p, atol=1e-12)


def test_dense_head_probabilities_are_the_per_pixel_softmax_averaged_over_pixels(modules):
    enc, x = modules
    head = build_head("segment_semantic").eval()
    with torch.no_grad():  # logits that differ from pixel to pixel (a fresh head's are near 0)
        head.net[-1].weight.mul_(200.0)
    p = head_probabilities(enc, head, x)
    assert p.shape == (10, TASK_SPECS["segment_semantic"].out)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    with torch.no_grad():
        logits = head(enc(x)).numpy().astype(np.float64)   # [N, C, H, W]
    assert logits.ndim == 4
    np.testing.assert_allclose(p, _softmax(logits).mean(axis=(2, 3)), atol=1e-6)
    # the mean of the per-pixel distributions, not the distribution of the mean logits
    assert not np.allclose(p, _softmax(logits.mean(axis=(2, 3))), atol=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both categorical-head encoders trained by the stage step on a tiny split, with a
    generated probe set (other scenes), its target file and the heads' probe files."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("heads")
    train = scenes.render_split(root / "train.h5", 32, 32, seed=0, start=0)
    probe = root / "probe.h5"
    build_probe_set({"probe": {"name": "mini_scenes", "source": "generated", "n_images": 24, "seed": 1},
                     "preprocessing": {"resolution": 32}}, probe, progress=False)
    targets = root / "targets.h5"
    minitaskonomy_target_file(probe, targets, ["class_object", "segment_semantic", "depth_zbuffer",
                                               "segment_unsup2d"])
    out = {}
    for task in HEAD_TASKS:
        p = {k: root / task / name for k, name in (("weights", "weights.pth"), ("sha256", "enc.sha256"),
                                                   ("head", "head.pth"), ("probe", "probe.h5"))}
        train_encoder_files(task, train, root / task / "encoders", p["weights"], p["sha256"], p["head"],
                            epochs=1, seed=0, threads=1)
        head_probe_file(task, p["weights"], p["head"], probe, p["probe"])
        out[task] = p
    return root, train, probe, targets, out


def test_training_writes_the_head_it_trained_and_the_encoder_bytes_are_unchanged(trained):
    root, train, _, _, out = trained
    data = scenes.read_scenes_h5(train)
    for task in HEAD_TASKS:
        enc, head, _ = train_encoder(task, data, epochs=1, seed=encoder_seed(task, 0))
        obj = torch.load(out[task]["head"], map_location="cpu", weights_only=True)
        assert set(obj) == {"state_dict"}
        build_head(task).load_state_dict(obj["state_dict"])  # strict: the architecture's keys
        loaded = load_head(task, out[task]["head"])
        x = model_input(data, TASK_SPECS[task].input)[:8]
        with torch.no_grad():
            code = enc(x)
            torch.testing.assert_close(loaded(code), head(code), rtol=0, atol=0)
        # the encoder checkpoint is the one training without a head file writes
        alone = root / f"{task}_alone"
        ckpt = train_task_encoder(task, train, alone, epochs=1, seed=encoder_seed(task, 0), threads=1)
        assert sha256_file(ckpt) == sha256_file(out[task]["weights"])
        assert not list(alone.glob("*head*"))


def test_head_probe_file_holds_the_heads_probabilities_of_the_probe_images(trained):
    _, _, probe, _, out = trained
    with open_h5(probe) as f:
        images, ids, sha = f["images"][()], read_str(f["ids"]), str(f.attrs["content_sha256"])
    for task in HEAD_TASKS:
        path = out[task]["probe"]
        p = read_head_probabilities(path, task)
        want = head_probabilities(load_encoder(out[task]["weights"]), load_head(task, out[task]["head"]),
                                  network_input(images, False))
        np.testing.assert_array_equal(p, want)
        assert p.shape == (24, TASK_SPECS[task].out)
        with open_h5(path) as f:
            assert read_str(f["ids"]) == ids and f.attrs["probe_sha256"] == sha
            assert f.attrs["reading"] == READINGS[TASK_SPECS[task].kind]
            assert f.attrs["weights_sha256"] == sha256_file(out[task]["weights"])
        with pytest.raises(ValueError, match="not of segment_semantic"):
            read_head_probabilities(out["class_object"]["probe"], "segment_semantic")
    with pytest.raises(ValueError, match="not a classifier"):
        head_probe_file("depth_zbuffer", out["class_object"]["weights"], out["class_object"]["head"], probe,
                        probe.parent / "x.h5")


def _activations(path, probe, n=24, seed=0):
    with open_h5(probe) as f:
        ids, sha = read_str(f["ids"]), str(f.attrs["content_sha256"])
    with open_h5(path, "w") as f:
        f.attrs["probe_sha256"] = sha
        str_dataset(f, "ids", ids)
        f.create_dataset("layers/encoder_output", data=np.random.default_rng(seed).normal(size=(n, 6)))
    return path


def test_source_estimates_read_the_head_file_and_refuse_another_probe_set(trained, tmp_path):
    root, _, probe, targets, out = trained
    acts = _activations(tmp_path / "acts.h5", probe)
    cls, _ = read_targets(targets, "class_object")
    seg, _ = read_targets(targets, "segment_semantic")
    for task in HEAD_TASKS:
        rows_path = tmp_path / f"{task}.csv"
        source_estimates(acts, targets, rows_path, task, ["encoder_output"], ["leep", "nce", "hscore"], {},
                         grid=2, levels=4, pca_dim=None, n_bootstrap=2, seed=0, head=out[task]["probe"])
        rows = files.read_source_rows(rows_path)
        point = rows[rows.replicate == 0].set_index(["estimator", "target"])
        p = read_head_probabilities(out[task]["probe"], task)
        assert point.loc[("leep", "class_object"), "value"] == pytest.approx(leep(p, cls), rel=1e-7)
        assert point.loc[("nce", "class_object"), "value"] == pytest.approx(nce(p.argmax(1), cls), rel=1e-7, abs=1e-9)
        want = mean_over_cells(leep, p, dense_to_cells(seg, 2))
        assert point.loc[("leep", "segment_semantic"), "value"] == pytest.approx(want, rel=1e-7)
        for est in ("leep", "nce"):
            assert np.isfinite(point.loc[(est, "depth_zbuffer"), "value"])  # quantized into levels
            assert np.isnan(point.loc[(est, "segment_unsup2d"), "value"])  # instance ids: never
            assert point.loc[(est, "segment_unsup2d"), "not_applicable"]
        assert np.isfinite(rows[rows.estimator == "leep"]
                           .query("target != 'segment_unsup2d'")["value"]).all()
    # without a head file: not applicable, with the reason
    source_estimates(acts, targets, tmp_path / "none.csv", "depth_zbuffer", ["encoder_output"], ["leep"], {},
                     grid=2, levels=4, pca_dim=None)
    none = files.read_source_rows(tmp_path / "none.csv")
    assert none["value"].isna().all() and none["not_applicable"].str.contains("no categorical head").all()
    # a head file of other images is refused
    other = root / "other_probe.h5"
    build_probe_set({"probe": {"name": "mini_scenes", "source": "generated", "n_images": 24, "seed": 2},
                     "preprocessing": {"resolution": 32}}, other, progress=False)
    o = out["class_object"]
    head_probe_file("class_object", o["weights"], o["head"], other, tmp_path / "other_head.h5")
    with pytest.raises(ProbeMismatchError, match="different probe sets"):
        source_estimates(acts, targets, tmp_path / "x.csv", "class_object", ["encoder_output"], ["leep"], {},
                         grid=2, levels=4, pca_dim=None, head=tmp_path / "other_head.h5")
    with pytest.raises(ValueError, match="not of class_object"):
        source_estimates(acts, targets, tmp_path / "x.csv", "class_object", ["encoder_output"], ["leep"], {},
                         grid=2, levels=4, pca_dim=None, head=out["segment_semantic"]["probe"])
    assert not (tmp_path / "x.csv").exists()
