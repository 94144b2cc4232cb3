"""Tests of mini-Taskonomy: encoders, zoo checkpoints, win rates, AHP and a tiny end-to-end run."""

from __future__ import annotations

import importlib
import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch

from tasksim import scenes
from tasksim.io import sha256_file
from tasksim.minitaskonomy import (
    BASELINES,
    BUILDER,
    ENCODER_LAYERS,
    MINI_TASKS,
    TASK_SPECS,
    ahp_affinity,
    read_affinity_csv,
    to_taskonomy_dict,
    train_encoder,
    train_task_encoder,
    train_transfers,
    win_rate_matrix,
)
from tasksim.minitaskonomy.data import per_image_loss, prepare_target
from tasksim.minitaskonomy.models import build_encoder
from tasksim.minitaskonomy.training import save_encoder_checkpoint
from tasksim.tasks import TASKS
from tasksim.zoo import n_parameters


def test_seventeen_canonical_tasks_with_labels():
    assert len(MINI_TASKS) == 17
    assert set(MINI_TASKS) <= set(TASKS)
    assert set(MINI_TASKS) == set(scenes.LABEL_TASKS)


def test_encoder_builder_layers_and_size():
    module, fn = BUILDER.split(":")
    enc = getattr(importlib.import_module(module), fn)()
    assert 50_000 < n_parameters(enc) < 90_000
    seen = {}
    hooks = [enc.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, o.shape)) for n in ENCODER_LAYERS]
    out = enc.eval()(torch.zeros(2, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert out.shape == (2, 8, 16, 16)
    assert seen["encoder_output"] == (2, 8, 16, 16) and seen["block1"][0] == 2
    assert list(seen) == list(ENCODER_LAYERS)  # recorded in forward order


def test_win_rates_basic_properties():
    rng = np.random.default_rng(0)
    losses = rng.random((4, 50))
    losses[3] = losses[0]  # a copy of source 0: every comparison is a tie
    w = win_rate_matrix(losses)
    np.testing.assert_allclose(np.diag(w), 0.5)
    np.testing.assert_allclose(w + w.T, 1.0)
    assert w[0, 3] == 0.5
    better = np.stack([losses[0], losses[0] - 0.1])
    np.testing.assert_allclose(win_rate_matrix(better), [[0.5, 0.0], [1.0, 0.5]])


def test_ahp_recovers_consistent_weights():
    w = np.array([0.5, 0.2, 0.2, 0.07, 0.03])
    wins = w[:, None] / (w[:, None] + w[None, :])  # Bradley-Terry: W/(1-W) = w_a / w_b
    np.testing.assert_allclose(ahp_affinity(wins), w / w.sum(), rtol=1e-9)
    perm = np.array([3, 0, 4, 1, 2])
    np.testing.assert_allclose(ahp_affinity(wins[np.ix_(perm, perm)]), w[perm], rtol=1e-9)


def test_ahp_orders_sources_by_measured_losses():
    rng = np.random.default_rng(1)
    base = rng.random(200)
    losses = np.stack([base + 0.3 * rng.random(200) * k for k in range(4)])  # source 0 best
    a = ahp_affinity(win_rate_matrix(losses))
    assert abs(a.sum() - 1) < 1e-12 and (a > 0).all()
    assert list(np.argsort(-a)) == [0, 1, 2, 3]


def test_taskonomy_spellings():
    import pandas as pd
    df = pd.DataFrame({"depth_zbuffer": [0.7, 0.3]}, index=["segment_semantic", "pixels"])
    d = to_taskonomy_dict(df)
    assert d == {"segmentsemantic_rb__rgb2depth": 0.7, "pixels__rgb2depth": 0.3}
    assert all(isinstance(v, np.float64) for v in d.values())


def test_targets_standardised_and_losses_per_image():
    data = scenes.render_batch(6, 32, seed=2)
    y, stats = prepare_target("normal", data)
    assert y.shape == (6, 3, 16, 16)
    np.testing.assert_allclose(y.mean((0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(y.std((0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)
    assert per_image_loss("normal", y, y).abs().max() == 0
    # segment embedding loss: a one-hot embedding of the segment id (distance sqrt 2 > margin 1)
    seg, _ = prepare_target("segment_unsup25d", data)
    emb = torch.nn.functional.one_hot(seg, 32).permute(0, 3, 1, 2).float()
    assert per_image_loss("segment_unsup25d", emb, seg).max() == 0
    assert per_image_loss("segment_unsup25d", torch.zeros_like(emb), seg).min() > 0
    cls, _ = prepare_target("class_object", data)
    assert per_image_loss("class_object", torch.randn(6, 4), cls).shape == (6,)


def test_training_is_seeded_and_learns():
    torch.set_num_threads(1)
    data = scenes.render_batch(48, 32, seed=4)
    e1, _, hist = train_encoder("depth_zbuffer", data, epochs=3, seed=7, batch_size=16)
    e2, _, _ = train_encoder("depth_zbuffer", data, epochs=3, seed=7, batch_size=16)
    for (k, a), b in zip(e1.state_dict().items(), e2.state_dict().values()):
        assert torch.equal(a, b), k
    assert hist[-1] < hist[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("mini")
    train = scenes.render_split(root / "train.h5", 32, 32, seed=0, start=0)
    transfer = scenes.render_split(root / "transfer.h5", 24, 32, seed=0, start=100)
    test = scenes.render_split(root / "test.h5", 16, 32, seed=0, start=200)
    tasks = ["depth_zbuffer", "edge_texture", "denoising"]
    ckpts = {t: train_task_encoder(t, train, root / "zoo", epochs=1, seed=0, threads=1) for t in tasks}
    paths = train_transfers(ckpts, transfer, test, root / "affinity", epochs=1, seed=0, threads=1)
    return tasks, ckpts, paths


def test_checkpoints_in_official_format(tiny_run):
    tasks, ckpts, _ = tiny_run
    for task, path in ckpts.items():
        m = re.fullmatch(rf"{task}_encoder-([0-9a-f]{{64}})\.pth", path.name)
        assert m and m.group(1) == sha256_file(path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
        assert set(obj) == {"state_dict"}
        module, fn = BUILDER.split(":")
        enc = getattr(importlib.import_module(module), fn)()
        enc.load_state_dict(obj["state_dict"])  # strict: every key matches the builder


def test_transfer_affinity_is_deterministic(tiny_run, tmp_path):
    """Same checkpoints, splits, seed and thread count: identical per-image losses and affinity."""
    tasks, ckpts, paths = tiny_run
    root = paths["losses"].parent.parent
    again = train_transfers(ckpts, root / "transfer.h5", root / "test.h5", tmp_path, epochs=1, seed=0, threads=1)
    first, second = np.load(paths["losses"]), np.load(again["losses"])
    for t in tasks:
        np.testing.assert_array_equal(first[t], second[t])
    assert again["affinity"].read_bytes() == paths["affinity"].read_bytes()


def test_checkpoint_bytes_depend_on_the_weights_only(tmp_path):
    """Same weights -> same file bytes and name (the SHA-256 in the name is reproducible)."""
    torch.manual_seed(0)
    enc = build_encoder()
    a = save_encoder_checkpoint(enc, "normal", tmp_path / "a")
    b = save_encoder_checkpoint(enc, "normal", tmp_path / "b")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    assert a.name == f"normal_encoder-{sha256_file(a)}.pth"


def test_affinity_outputs(tiny_run):
    tasks, _, paths = tiny_run
    df = read_affinity_csv(paths["affinity"])
    assert list(df.index) == tasks + list(BASELINES)
    assert list(df.columns) == [t for t in MINI_TASKS if t in tasks]
    np.testing.assert_allclose(df.sum(axis=0).to_numpy(), 1.0, atol=1e-8)
    assert (df.to_numpy() > 0).all()
    d = pickle.loads(paths["affinity_pkl"].read_bytes())
    assert abs(d["rgb2depth__denoise"] - df.loc["depth_zbuffer", "denoising"]) < 1e-8
    assert abs(sum(v for k, v in d.items() if k.endswith("__edge2d")) - 1) < 1e-8
    losses = np.load(paths["losses"])
    assert losses["depth_zbuffer"].shape == (len(tasks) + 2, 16)
    wins = read_affinity_csv(paths["wins_vs_pixels"])
    np.testing.assert_allclose(wins.loc["pixels"].to_numpy(), 0.5)
    assert TASK_SPECS["denoising"].input == "noisy"


def test_pickle_form_parses_like_taskonomy_files(tiny_run):
    """The written pickle goes through the same parser as the Taskonomy affinity files."""
    groundtruth = pytest.importorskip("tasksim.taxonomy.groundtruth")
    _, _, paths = tiny_run
    df = read_affinity_csv(paths["affinity"])
    raw = pickle.loads(paths["affinity_pkl"].read_bytes())
    parsed = groundtruth.first_order_matrix(raw)
    assert set(parsed.index) == set(df.index) and set(parsed.columns) == set(df.columns)
    np.testing.assert_allclose(parsed.loc[df.index, df.columns].to_numpy(), df.to_numpy(), atol=1e-9)


# --------------------------------------------------------------------------- the scientific check


def _affinity(tasks, rng):
    """Source x target affinity with the own encoder best in every column, plus baselines."""
    a = rng.uniform(0.1, 1.0, size=(len(tasks), len(tasks)))
    np.fill_diagonal(a, 2.0)
    df = pd.DataFrame(a, index=tasks, columns=tasks)
    return pd.concat([df, pd.DataFrame([[0.05] * len(tasks)] * 2, index=["pixels", "random"], columns=tasks)])


def test_mean_target_spearman_known_answers():
    from tasksim.minitaskonomy.check import mean_target_spearman, score_against_affinity

    rng = np.random.default_rng(0)
    tasks = list(MINI_TASKS[:8])
    aff = _affinity(tasks, rng)
    perfect = aff.loc[tasks, tasks]  # the affinity itself, used as "similarity", scores 1
    assert mean_target_spearman(perfect, aff, own_entry=True) == pytest.approx(1.0)
    assert mean_target_spearman(perfect, aff, own_entry=False) == pytest.approx(1.0)
    assert mean_target_spearman(-perfect, aff, own_entry=False) == pytest.approx(-1.0)
    # the own entry alone lifts an unrelated matrix with a unit diagonal above chance
    noise = [mean_target_spearman(_random_similarity(tasks, s), aff, own_entry) for s in range(40)
             for own_entry in (True, False)]
    with_self, without_self = np.mean(noise[0::2]), np.mean(noise[1::2])
    assert with_self > 0.15 and abs(without_self) < 0.1
    res = score_against_affinity(perfect, aff, 99)
    assert res["score"] == pytest.approx(1.0) and res["p_value"] == pytest.approx(0.01)


def _random_similarity(tasks, seed):
    r = np.random.default_rng(seed).uniform(size=(len(tasks), len(tasks)))
    r = (r + r.T) / 2
    np.fill_diagonal(r, 1.0)
    return pd.DataFrame(r, index=tasks, columns=tasks)


def test_random_encoder_features_are_seeded_and_distinct():
    from tasksim.minitaskonomy.check import random_encoder_features

    imgs = scenes.render_rgb(6, 32, seed=2)
    a = random_encoder_features(imgs, ["x", "y"], seed=5)
    b = random_encoder_features(imgs, ["x", "y"], seed=5)
    assert a["x"].shape == (6, 8 * 8 * 8)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.allclose(a["x"], a["y"])


def test_taskonomy_comparison_on_shared_names():
    from tasksim.minitaskonomy.check import taskonomy_comparison

    rng = np.random.default_rng(1)
    tasks = ["autoencoding", "denoising", "colorization", "normal", "reshading", "depth_zbuffer"]
    mini = _affinity(tasks, rng)
    tk_tasks = ["autoencoding", "denoising", "normal", "reshading", "depth_zbuffer", "vanishing_point"]
    tk = pd.DataFrame(rng.uniform(size=(7, 6)), index=tk_tasks + ["colorization"], columns=tk_tasks)
    tk.loc["autoencoding", "normal"] = np.nan  # a missing entry drops that target
    table = taskonomy_comparison(mini, tk, {"same": mini.loc[tasks, tasks]})
    first = table.iloc[0]
    assert first.matrix == "measured mini affinity"
    assert first.n_sources == 6  # colorization is a Taskonomy source here, not a target
    assert first.n_targets == 4  # colorization: no Taskonomy column; normal: a missing entry
    assert table.mean_spearman.iloc[1] == pytest.approx(first.mean_spearman)


def test_tree_groups_lists_clusters_with_task_groups():
    from tasksim.minitaskonomy.check import tree_groups
    from tasksim.taxonomy.trees import cluster

    names = ["autoencoding", "denoising", "normal", "reshading"]
    sim = np.array([[1, .9, .1, .1], [.9, 1, .1, .1], [.1, .1, 1, .9], [.1, .1, .9, 1]])
    z = cluster(sim)
    groups = tree_groups(z, names, 2)
    assert sorted(sorted(t for t, _ in g) for g in groups) == [["autoencoding", "denoising"], ["normal", "reshading"]]
    assert dict(x for g in groups for x in g)["normal"] == "3D"
