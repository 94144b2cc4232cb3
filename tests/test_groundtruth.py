"""Ground truth: checksums, restricted unpickling, first-order parsing, reference tree."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from tasksim import tasks
from tasksim.taxonomy import groundtruth as gt

SHARED = Path(__file__).parents[2] / "shared" / "taskonomy"
ALL_FILES = [(k, v) for k in gt.KINDS for v in gt.VARIANTS]


def _need_shared() -> Path:
    if not (SHARED / "affinities" / "all_affinities_16k.pkl").is_file():
        pytest.skip(f"Taskonomy mirror not found at {SHARED} (../shared/taskonomy beside the checkout)")
    return SHARED


class _Evil:
    """Pickles to a call of os.system; only ever pickled here, never unpickled unrestricted."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_relpaths_and_hashes_cover_nine_files():
    rels = {gt.relpath(k, v) for k, v in ALL_FILES}
    assert rels == set(gt.SHA256)
    assert gt.relpath("affinity", "base") == "affinities/all_affinities.pkl"
    assert gt.relpath("wins_vs_pixels", "16k") == "winrates/wins_vs_pixels_16k.pkl"
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in gt.SHA256.values())
    with pytest.raises(ValueError):
        gt.relpath("affinity", "4k")


def test_resolve_source_forms(tmp_path):
    rel = "affinities/all_affinities.pkl"
    assert gt.resolve_source(gt.DEFAULT_SOURCE, rel) == gt.URL_TEMPLATE.format(relpath=rel)
    assert gt.resolve_source("https://example.org/results", rel) == "https://example.org/results/" + rel
    assert gt.resolve_source(f"file://{tmp_path}", rel) == str(tmp_path / rel)
    assert gt.resolve_source(str(tmp_path) + "/", rel) == str(tmp_path / rel)
    assert gt.resolve_source(tmp_path, rel) == str(tmp_path / rel)


def test_name_mapping_round_trips():
    for name in tasks.TASKS:
        assert gt.label(gt.pickle_label(name)) == name
        assert tasks.canonical(tasks.pickle_name(name)) == name
    for x in gt.NON_TASK_LABELS:
        assert gt.label(x) == x and gt.pickle_label(x) == x
    assert gt.label("impainting_whole") == "inpainting"
    assert gt.pickle_label("vanishing_point") == "vanishing_point_well_defined"


def test_crafted_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"a__b": _Evil(marker)}, protocol=3)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(payload)
    sha = gt.sha256_file(evil)  # a matching hash: the unpickler is the only defence left
    with pytest.raises(pickle.UnpicklingError, match=r"refused global (posix|os|nt)\.system"):
        gt.load_pickle(evil, sha)
    assert not marker.exists()


def test_restricted_unpickler_admits_numpy_scalars(tmp_path):
    d = {"a__b": np.float64(0.25), "c__d__b": np.float64(0.5)}
    p = tmp_path / "ok.pkl"
    p.write_bytes(pickle.dumps(d, protocol=3))
    assert gt.load_pickle(p, gt.sha256_file(p)) == {"a__b": 0.25, "c__d__b": 0.5}
    p.write_bytes(pickle.dumps({"a__b": np.arange(3.0)}, protocol=3))  # arrays are not admitted
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        gt.load_pickle(p, gt.sha256_file(p))


def test_first_order_matrix_orientation_and_labels():
    raw = {"rgb2depth__reshade": 0.3, "self__reshade": 0.5, "reshade__reshade": 0.1,
           "rgb2depth__rgb2sfnorm__reshade": 0.1, "random__reshade": 0.0}
    m = gt.first_order_matrix(raw)
    assert m.loc["depth_zbuffer", "reshading"] == 0.3  # row = source, column = target
    assert m.loc["reshading", "reshading"] == 0.1 and m.loc["self", "reshading"] == 0.5
    assert list(m.columns) == ["reshading"]
    assert list(m.index) == ["reshading", "depth_zbuffer", "self", "random"]
    ho = gt.higher_order_table(raw)
    assert set(ho["order"]) == {1, 2}
    row = ho[ho["order"] == 2].iloc[0]
    assert row["sources"] == ("depth_zbuffer", "normal") and row["target"] == "reshading"


@pytest.mark.shared
def test_tampered_file_fails_checksum(tmp_path):
    root = _need_shared()
    mirror = tmp_path / "mirror"
    (mirror / "affinities").mkdir(parents=True)
    dst = mirror / "affinities" / "all_affinities_1k.pkl"
    shutil.copyfile(root / "affinities" / "all_affinities_1k.pkl", dst)
    data = bytearray(dst.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(gt.ChecksumError) as err:
        gt.load_matrix(mirror, "affinity", "1k")
    assert gt.SHA256["affinities/all_affinities_1k.pkl"] in str(err.value)
    assert "all_affinities_1k.pkl" in str(err.value)
    with pytest.raises(gt.ChecksumError):
        gt.load_pickle(dst, gt.SHA256["affinities/all_affinities_1k.pkl"])


@pytest.mark.shared
def test_obtain_remote_source_downloads_once_into_cache(tmp_path, monkeypatch):
    root = _need_shared()
    calls = []

    def fake_fetch(source, dest, sha256, retries=3):
        calls.append((source, Path(dest), sha256))
        rel = source.split("/results/", 1)[1]
        shutil.copyfile(root / rel, dest)
        return Path(dest)

    monkeypatch.setattr(gt, "fetch", fake_fetch)
    p = gt.obtain(gt.DEFAULT_SOURCE, "wins_vs_pixels", "16k", cache_dir=tmp_path)
    rel = "winrates/wins_vs_pixels_16k.pkl"
    assert calls == [(gt.URL_TEMPLATE.format(relpath=rel), tmp_path / rel, gt.SHA256[rel])]
    assert p == tmp_path / rel
    gt.obtain(gt.DEFAULT_SOURCE, "wins_vs_pixels", "16k", cache_dir=tmp_path)
    assert len(calls) == 1  # a valid cached copy is reused
    p.write_bytes(b"corrupt")
    gt.obtain(gt.DEFAULT_SOURCE, "wins_vs_pixels", "16k", cache_dir=tmp_path)
    assert len(calls) == 2 and gt.sha256_file(p) == gt.SHA256[rel]  # a bad cache is replaced
    with pytest.raises(ValueError, match="cache_dir"):
        gt.obtain(gt.DEFAULT_SOURCE, "affinity", "16k")


@pytest.mark.shared
def test_obtain_local_mirror_verified_in_place(tmp_path):
    root = _need_shared()
    # a local mirror is verified in place
    assert gt.obtain(root, "affinity", "1k") == root / "affinities" / "all_affinities_1k.pkl"
    assert gt.obtain(f"file://{root}", "wins_vs_task", "1k").is_file()


@pytest.mark.shared
@pytest.mark.parametrize("kind,variant", ALL_FILES)
def test_parsed_files(kind, variant):
    """Affinity columns: first-order values sum to < 1 (the rest is higher order); win rates lie
    in [0, 1] and are not normalised per target (column sums range from about 0.5 to 19). In every file ``self``
    is a maximal entry of at least 17 of the 22 target columns. Data (targets where self is a
    maximum): affinity 17 base / 21 16k / 22 1k; wins_vs_pixels 17 / 20 / 21; wins_vs_task
    19 / 21 / 22. The exceptions are egomotion (best source: normal), nonfixated_pose in the base
    affinities (best: fixated_pose) and targets whose own-encoder readout X__X beats self
    (segmentation tasks, depth_euclidean, reshading in some files)."""
    m = gt.load_matrix(_need_shared(), kind, variant)
    tasks_cols = [c for c in m.columns if c in tasks.TASKS]
    assert len(m.columns) == 22
    assert ("class_scene" in m.columns) == (variant != "base")
    assert ("class_selected" in m.columns) == (variant == "base")
    assert {"self", "random", "class_selected"} <= set(m.index)
    assert ("pixels" in m.index) == (kind != "affinity" and variant == "base")
    for t in ("colorization", "inpainting", "jigsaw"):
        assert t in m.index and t not in m.columns  # source-only tasks
    assert not m.loc[:, tasks_cols].drop(index=[r for r in ("pixels",) if r in m.index]).isna().any().any()
    vals = m.to_numpy()
    assert np.nanmin(vals) >= 0 and np.nanmax(vals) <= 1
    if kind == "affinity":
        assert (m.sum(axis=0) < 1).all()
    is_max = (m.loc["self"] >= m.max(axis=0) - 1e-12)
    assert is_max.sum() >= 17
    if kind == "wins_vs_task":
        assert np.allclose(m.loc["self"], 0.5)  # the task network against itself


@pytest.mark.shared
def test_taskonomy_tree_recovers_the_four_paper_groups():
    from scipy.cluster.hierarchy import cut_tree
    a = gt.load_matrix(_need_shared(), "affinity", "16k")
    z, labels = gt.taskonomy_tree(a)
    assert sorted(labels) == sorted(tasks.PAPER_TASKS) and z.shape == (19, 4)
    assert np.all(np.diff(z[:, 2]) >= -1e-12)
    cut = cut_tree(z, n_clusters=4).ravel()
    clusters = {frozenset(t for t, c in zip(labels, cut) if c == k) for k in set(cut)}
    groups = {frozenset(t for t in labels if tasks.group(t) == g) for g in tasks.GROUPS}
    assert clusters == groups
    f = gt.taskonomy_tree_features(a)
    assert f.shape == (20, 18) and np.allclose(f.max(axis=0), 1.0)
    assert np.allclose(np.sort(f["normal"].to_numpy()), np.arange(1, 21) / 20)
