"""Target sets (tasksim.targets): label kinds, Mini-Taskonomy labels of the probe scenes, the
Taskonomy sample building's labels (decoding and a run against the local GitHub stand-in), a
user's own labels, and the HDF5 target file."""
from __future__ import annotations

import hashlib
import io
import json
import math

import h5py
import numpy as np
import pytest
from PIL import Image

from tasksim.io import str_dataset
from tasksim.minitaskonomy.data import MINI_TASKS, TASK_SPECS, raw_target
from tasksim.probe import build_probe_set, probe_info, write_probe, write_url_list
from tasksim.scenes import render_batch, render_rgb
from tasksim.targets import (
    LABEL_KINDS,
    SAMPLE_LABELS,
    TASK_LABEL_KINDS,
    LabelFileError,
    NoLabelKindError,
    ProbeMismatchError,
    TargetError,
    TaskLabels,
    class_labels_from_csv,
    decode_label,
    label_kind,
    label_maps_from_folder,
    label_url,
    minitaskonomy_targets,
    read_targets,
    read_task_labels,
    recorded_sha256,
    taskonomy_targets,
    write_targets,
)
from tasksim.targets.minitaskonomy import spec_kind
from tasksim.targets.taskonomy import DECODER_KINDS, label_file_name
from tasksim.tasks import TASKS

from fake_github import FakeGitHub

# ------------------------------------------------------------------ helpers


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def small_probe(path, ids, size=8, seed=0):
    imgs = (np.random.default_rng(seed).random((len(ids), size, size, 3)) * 255).astype(np.uint8)
    write_probe(path, ids, list(imgs), len(ids), size, "folder:test")
    return path


# ------------------------------------------------------------------ label kinds


def test_every_single_image_task_declares_one_kind_and_multi_image_tasks_none():
    assert set(TASK_LABEL_KINDS) <= set(TASKS)  # canonical names only
    for name, task in TASKS.items():
        if task.single_image:
            assert label_kind(name) in LABEL_KINDS
        else:
            with pytest.raises(NoLabelKindError, match=name):
                label_kind(name)
    assert label_kind("rgb2depth") == "dense_regression"  # old spellings resolve to the same entry
    assert label_kind("segmentsemantic_rb") == "dense_class"
    with pytest.raises(NoLabelKindError, match="unknown"):
        label_kind("not_a_task")


def test_every_mini_task_has_the_kind_its_training_implies():
    assert set(MINI_TASKS) <= set(TASK_LABEL_KINDS)
    for task in MINI_TASKS:
        assert label_kind(task) == spec_kind(TASK_SPECS[task]), task
    assert [label_kind(t) for t in ("class_object", "segment_semantic", "segment_unsup2d", "room_layout",
                                    "normal")] == ["class", "dense_class", "dense_instance",
                                                   "vector_regression", "dense_regression"]


def test_sample_building_covers_every_labelled_task_with_its_declared_kind():
    assert set(SAMPLE_LABELS) == set(TASK_LABEL_KINDS)
    for task, spec in SAMPLE_LABELS.items():
        assert DECODER_KINDS[spec.decoder] == label_kind(task), task


def test_task_labels_refuse_wrong_layouts():
    with pytest.raises(TargetError, match="axes"):
        TaskLabels("normal", "dense_regression", np.zeros((2, 4, 4), np.float32))
    with pytest.raises(TargetError, match="out of range"):
        TaskLabels("class_object", "class", np.array([0, 5]), n_classes=5)
    with pytest.raises(TargetError, match="integers"):
        TaskLabels("class_object", "class", np.array([0.5, 1.0]), n_classes=5)
    ok = TaskLabels("normal", "dense_regression", np.zeros((2, 4, 4, 3)))
    assert ok.n_channels == 3 and ok.values.dtype == np.float32


# ------------------------------------------------------------------ Mini-Taskonomy


@pytest.fixture(scope="module")
def mini_probe(tmp_path_factory):
    """The demo's probe set, built the demo's way (probe.source: generated), small."""
    path = tmp_path_factory.mktemp("mini") / "mini_scenes.h5"
    cfg = {"probe": {"name": "mini_scenes", "source": "generated", "n_images": 4, "seed": 1},
           "preprocessing": {"resolution": 32}}
    build_probe_set(cfg, path, progress=False)
    return path


def test_mini_labels_are_the_training_targets_of_the_probe_scenes(mini_probe):
    labels = minitaskonomy_targets(mini_probe)
    assert set(labels) == set(MINI_TASKS)
    data = render_batch(4, 32, seed=1)  # scenes 0..3 of seed 1: the probe images
    for task in MINI_TASKS:
        want = raw_target(task, data)
        got = labels[task]
        assert got.kind == label_kind(task)
        if got.kind == "dense_regression":
            want = np.moveaxis(want, 1, -1)
            assert got.n_channels == TASK_SPECS[task].out
        np.testing.assert_array_equal(got.values, want, err_msg=task)
    assert labels["class_object"].n_classes == TASK_SPECS["class_object"].out
    assert labels["segment_semantic"].values.shape == (4, 16, 16)


def test_mini_labels_follow_probe_order(tmp_path):
    order = [3, 0, 2]
    imgs = np.stack([render_rgb(1, 32, seed=1, start=i)[0] for i in order])
    path = tmp_path / "shuffled.h5"
    write_probe(path, [f"scene_{i:06d}" for i in order], list(imgs), 3, 32, "generated:seed=1")
    labels = minitaskonomy_targets(path, ["depth_zbuffer", "class_object"])
    for row, i in enumerate(order):
        one = render_batch(1, 32, seed=1, start=i)
        np.testing.assert_array_equal(labels["depth_zbuffer"].values[row],
                                      np.moveaxis(raw_target("depth_zbuffer", one), 1, -1)[0])
        assert labels["class_object"].values[row] == raw_target("class_object", one)[0]


def test_mini_labels_refuse_images_that_are_not_the_scenes(tmp_path):
    imgs = render_rgb(2, 32, seed=2)  # seed 2 images, but the file claims seed 1
    path = tmp_path / "wrong.h5"
    write_probe(path, ["scene_000000", "scene_000001"], list(imgs), 2, 32, "generated:seed=1")
    with pytest.raises(TargetError, match=r"wrong\.h5.*scene_000000"):
        minitaskonomy_targets(path, ["normal"])
    folder = small_probe(tmp_path / "folder.h5", ["a.png", "b.png"])
    with pytest.raises(TargetError, match="generated"):
        minitaskonomy_targets(folder)


# ------------------------------------------------------------------ Taskonomy decoding (known answers)


def test_depth_png_is_metres_with_missing_as_nan():
    raw = np.array([[0, 512], [1024 + 256, 65535]], dtype=np.uint16)
    got = decode_label("depth_zbuffer", png(raw), "d.png")
    assert got.shape == (2, 2, 1) and got.dtype == np.float32
    np.testing.assert_array_equal(got[..., 0], [[0.0, 1.0], [2.5, np.nan]])
    with pytest.raises(LabelFileError, match=r"d8\.png.*16-bit"):
        decode_label("depth_euclidean", png(np.zeros((2, 2), np.uint8)), "d8.png")


def test_normal_curvature_and_gray_encodings():
    rgb = np.array([[[0, 255, 127], [51, 204, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(decode_label("normal", png(rgb), "n.png")[0, 0], [-1.0, 1.0, 127 / 255 * 2 - 1],
                               rtol=0, atol=1e-6)
    curv = np.array([[[127, 254, 9], [0, 127, 9]]], dtype=np.uint8)
    np.testing.assert_allclose(decode_label("curvature", png(curv), "c.png")[0], [[0.0, 1.0], [-1.0, 0.0]],
                               atol=1e-6)
    edges16 = np.array([[0, 65535], [32768, 13107]], dtype=np.uint16)
    np.testing.assert_allclose(decode_label("edge_texture", png(edges16), "e.png")[..., 0],
                               edges16 / 65535.0, atol=1e-7)
    gray8 = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    np.testing.assert_allclose(decode_label("reshading", png(gray8), "r.png")[..., 0], gray8 / 255.0, atol=1e-7)
    as_rgb = np.repeat(gray8[..., None], 3, axis=2)  # gray stored with three equal channels
    np.testing.assert_allclose(decode_label("keypoints2d", png(as_rgb), "k.png")[..., 0], gray8 / 255.0,
                               atol=1e-7)
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    np.testing.assert_allclose(decode_label("autoencoding", png(img), "rgb.png"), img / 255.0, atol=1e-7)


def test_class_and_segment_maps():
    ids = np.array([[0, 1], [17, 5]], dtype=np.uint8)
    got = decode_label("segment_semantic", png(ids), "s.png")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ids)
    with pytest.raises(LabelFileError, match=r"bad\.png.*18 classes"):
        decode_label("segment_semantic", png(np.array([[18]], dtype=np.uint8)), "bad.png")
    segs = np.array([[0, 300], [4000, 7]], dtype=np.uint16)
    np.testing.assert_array_equal(decode_label("segment_unsup2d", png(segs), "u.png"), segs)
    colour = np.array([[[9, 9, 9], [1, 2, 3]], [[1, 2, 3], [0, 0, 200]]], dtype=np.uint8)
    with pytest.raises(LabelFileError, match=r"s3\.png.*one channel"):
        decode_label("segment_semantic", png(colour), "s3.png")
    # colour-coded segments: one id per colour, numbered in sorted colour order
    np.testing.assert_array_equal(decode_label("segment_unsup25d", png(colour), "u3.png"), [[2, 1], [1, 0]])


def test_class_scores_become_their_argmax():
    scores = np.full(1000, 1e-4, dtype=np.float32)
    scores[417] = 0.9
    assert decode_label("class_object", npy(scores[None]), "o.npy") == 417
    places = np.zeros(365)
    places[364] = 1.0
    assert decode_label("class_scene", npy(places), "p.npy") == 364
    with pytest.raises(LabelFileError, match=r"short\.npy.*365 class scores"):
        decode_label("class_scene", npy(np.zeros(63)), "short.npy")
    with pytest.raises(LabelFileError, match=r"junk\.npy"):
        decode_label("class_object", b"\x93NUMPY garbage", "junk.npy")


def _info(rotation, location=(0.0, 0.0, 0.0)):
    return json.dumps({"camera_rotation_final": list(rotation), "camera_location": list(location),
                       "bounding_box_ranges": {"x": [-1.0, 3.0], "y": [-1.0, 2.0], "z": [0.0, 3.0]},
                       "vanishing_points_gaussian_sphere": {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]},
                       "resolution": 512}).encode()


def test_room_layout_known_answers():
    # the box's y range [-1, 2] is mirrored to [-2, 1]: centre (1, -0.5, 1.5), extent (4, 3, 3)
    # no rotation: flipped camera frame = Rz(-90 deg); every quarter turn ties at 90 deg -> none
    np.testing.assert_allclose(decode_label("room_layout", _info((0, 0, 0)), "a.json"),
                               [0.5, 1, 1.5, 0, 0, -math.pi / 2, 4, 3, 3], atol=1e-6)
    # camera at (1, 2, 0): in the flipped frame it sits at (2, -1, 0)
    np.testing.assert_allclose(decode_label("room_layout", _info((0, 0, 0), (1, 2, 0)), "b.json"),
                               [-0.5, -1, 1.5, 0, 0, -math.pi / 2, 4, 3, 3], atol=1e-6)
    # looking along world +y: the world is turned by -90 deg about z (x <- y, y <- -x)
    np.testing.assert_allclose(decode_label("room_layout", _info((math.pi / 2, 0, math.pi / 2)), "c.json"),
                               [1, 1.5, 0.5, math.pi / 2, 0, -math.pi / 2, 3, 4, 3], atol=1e-6)


def test_vanishing_point_known_answers():
    c = math.sqrt(0.5)
    want = [c, 0, -c, -c, 0, -c, 0, 1, 0]
    np.testing.assert_allclose(decode_label("vanishing_point", _info((math.pi / 2, 0, math.pi / 4)), "v.json"),
                               want, atol=1e-6)
    # the same view turned by 180 deg about the vertical: the half turn is undone
    np.testing.assert_allclose(
        decode_label("vanishing_point", _info((math.pi / 2, 0, 5 * math.pi / 4)), "w.json"), want, atol=1e-6)
    with pytest.raises(LabelFileError, match=r"x\.json.*camera_location"):
        decode_label("vanishing_point", json.dumps({"camera_rotation_final": [0, 0, 0]}).encode(), "x.json")
    with pytest.raises(LabelFileError, match=r"y\.json.*JSON"):
        decode_label("room_layout", b"{not json", "y.json")


def test_label_urls_follow_the_sample_building_layout():
    base = "https://raw.githubusercontent.com/alexsax/taskonomy-sample-model-1/abc123"
    img = f"{base}/rgb/point_12_view_3_domain_rgb.png"
    assert label_url(img, "depth_zbuffer") == f"{base}/depth_zbuffer/point_12_view_3_domain_depth_zbuffer.png"
    assert label_url(img, "class_places") == f"{base}/class_scene/point_12_view_3_domain_class_places.npy"
    assert label_url(img, "rgb2sfnorm") == f"{base}/normal/point_12_view_3_domain_normal.png"
    assert label_url(img, "curvature") == f"{base}/principal_curvature/point_12_view_3_domain_principal_curvature.png"
    assert label_url(img, "segment_semantic") == f"{base}/segment_semantic/point_12_view_3_domain_segmentsemantic.png"
    assert label_url(img, "room_layout") == f"{base}/point_info/point_12_view_3_domain_point_info.json"
    assert label_url(img, "autoencoding") == img
    with pytest.raises(TargetError, match="not a Taskonomy RGB"):
        label_url(f"{base}/rgb/photo.jpg", "normal")
    with pytest.raises(TargetError, match="multi-image|no single-image"):
        label_file_name("point_1_view_0_domain_rgb.png", "egomotion")


# ------------------------------------------------------------------ the stand-in GitHub

REPO, COMMIT = "alexsax/taskonomy-sample-model-1", "eed3233b1338f74b38af6d91b37cd9e03528d5e8"
VIEWS = ["point_0_view_1_domain_rgb.png", "point_7_view_0_domain_rgb.png", "point_10_view_2_domain_rgb.png"]


def _building(rng):
    """A tiny sample building: rgb plus four label folders with known contents."""
    depth = rng.integers(0, 60000, (3, 6, 6)).astype(np.uint16)
    depth[1, 2, 3] = 65535
    semantic = rng.integers(0, 18, (3, 6, 6)).astype(np.uint8)
    places = rng.random((3, 365))
    pts = [(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), float(rng.uniform(-3, 3))) for _ in VIEWS]
    folders: dict[str, dict[str, bytes]] = {"rgb": {}, "depth_zbuffer": {}, "segment_semantic": {},
                                            "class_scene": {}, "point_info": {}}
    for i, name in enumerate(VIEWS):
        stem = name.replace("_domain_rgb.png", "")
        folders["rgb"][name] = png((rng.random((6, 6, 3)) * 255).astype(np.uint8))
        folders["depth_zbuffer"][f"{stem}_domain_depth_zbuffer.png"] = png(depth[i])
        folders["segment_semantic"][f"{stem}_domain_segmentsemantic.png"] = png(semantic[i])
        folders["class_scene"][f"{stem}_domain_class_places.npy"] = npy(places[i].astype(np.float32))
        folders["point_info"][f"{stem}_domain_point_info.json"] = _info(pts[i])
    return folders, {"depth": depth, "semantic": semantic, "places": places, "rotations": pts}


@pytest.fixture()
def building(tmp_path):
    folders, truth = _building(np.random.default_rng(5))
    with FakeGitHub(max_seconds=120) as gh:
        gh.add_repo(REPO, COMMIT, folders)
        urls = [f"{gh.url}/raw/{REPO}/{COMMIT}/rgb/{n}" for n in VIEWS]
        probe = small_probe(tmp_path / "probe.h5", VIEWS, size=6)
        url_list = tmp_path / "probe.urls.txt"
        write_url_list(url_list, [(u, "0" * 64) for u in urls], "test probe")
        yield {"gh": gh, "folders": folders, "truth": truth, "probe": probe, "url_list": url_list,
               "cache": tmp_path / "cache", "tmp": tmp_path}


TASKS4 = ["depth_zbuffer", "segment_semantic", "class_scene", "vanishing_point"]


def test_sample_building_labels_download_and_decode(building):
    b = building
    got = taskonomy_targets(b["probe"], b["url_list"], TASKS4, b["cache"])
    t = b["truth"]
    want_depth = np.where(t["depth"] == 65535, np.nan, t["depth"] / 512.0)[..., None]
    np.testing.assert_allclose(got["depth_zbuffer"].values, want_depth, rtol=1e-6)
    np.testing.assert_array_equal(got["segment_semantic"].values, t["semantic"])
    np.testing.assert_array_equal(got["class_scene"].values, t["places"].argmax(axis=1))
    assert got["class_scene"].n_classes == 365 and got["vanishing_point"].values.shape == (3, 9)
    for i, rot in enumerate(t["rotations"]):
        np.testing.assert_allclose(got["vanishing_point"].values[i],
                                   decode_label("vanishing_point", _info(rot), "ref"), atol=1e-6)
    # the files asked for are the sample building's names, and their SHA-256 is recorded
    requested = {p for p, _ in b["gh"].requests}
    assert f"/raw/{REPO}/{COMMIT}/class_scene/point_7_view_0_domain_class_places.npy" in requested
    assert f"/raw/{REPO}/{COMMIT}/point_info/point_10_view_2_domain_point_info.json" in requested
    seg = got["segment_semantic"]
    names = [s.rpartition("/")[2] for s in seg.sources]
    assert seg.sha256 == tuple(hashlib.sha256(b["folders"]["segment_semantic"][n]).hexdigest() for n in names)
    # dense labels can be cut and resized like the probe images
    small = taskonomy_targets(b["probe"], b["url_list"], ["segment_semantic"], b["cache"], size=3)
    np.testing.assert_array_equal(small["segment_semantic"].values, t["semantic"][:, 1::2, 1::2])


def test_recorded_hashes_verify_the_cache_on_a_rebuild(building):
    b = building
    first = taskonomy_targets(b["probe"], b["url_list"], ["segment_semantic"], b["cache"])
    path = write_targets(b["tmp"] / "targets.h5", first, b["probe"])
    expected = recorded_sha256(path)
    assert set(expected) == set(first["segment_semantic"].sources)
    n_before = b["gh"].calls(f"/raw/{REPO}/{COMMIT}/segment_semantic/")
    # a cached file altered on disk is noticed and fetched again; the others are reused
    cached = b["cache"] / "segment_semantic" / "point_0_view_1_domain_segmentsemantic.png"
    cached.write_bytes(png(np.zeros((6, 6), np.uint8)))
    again = taskonomy_targets(b["probe"], b["url_list"], ["segment_semantic"], b["cache"], expected=expected)
    np.testing.assert_array_equal(again["segment_semantic"].values, first["segment_semantic"].values)
    assert b["gh"].calls(f"/raw/{REPO}/{COMMIT}/segment_semantic/") == n_before + 1
    # the server now serves other bytes than were recorded: refused, naming the file
    cached.unlink()
    name = "point_0_view_1_domain_segmentsemantic.png"
    b["folders"]["segment_semantic"][name] = png(np.ones((6, 6), np.uint8))
    with pytest.raises(LabelFileError, match=rf"{name}.*SHA-256 mismatch"):
        taskonomy_targets(b["probe"], b["url_list"], ["segment_semantic"], b["cache"], expected=expected)


def test_missing_label_file_fails_naming_its_url(building):
    b = building
    del b["folders"]["depth_zbuffer"]["point_7_view_0_domain_depth_zbuffer.png"]
    url = f"{b['gh'].url}/raw/{REPO}/{COMMIT}/depth_zbuffer/point_7_view_0_domain_depth_zbuffer.png"
    with pytest.raises(LabelFileError, match=rf"{url}.*point_7_view_0_domain_rgb.png.*404"):
        taskonomy_targets(b["probe"], b["url_list"], ["depth_zbuffer"], b["cache"])
    assert not list(b["cache"].rglob("*.part"))


def test_corrupt_label_file_fails_naming_its_url(building):
    b = building
    name = "point_10_view_2_domain_depth_zbuffer.png"
    b["folders"]["depth_zbuffer"][name] = png(np.zeros((6, 6), np.uint16))[:40]  # cut-off PNG
    with pytest.raises(LabelFileError, match=rf"depth_zbuffer/{name}.*cached as"):
        taskonomy_targets(b["probe"], b["url_list"], ["depth_zbuffer"], b["cache"])
    b["folders"]["class_scene"]["point_0_view_1_domain_class_places.npy"] = b"not an array"
    with pytest.raises(LabelFileError, match=r"point_0_view_1_domain_class_places\.npy"):
        taskonomy_targets(b["probe"], b["url_list"], ["class_scene"], b["cache"])


def test_url_list_must_be_the_probe_sets(building):
    b = building
    other = b["tmp"] / "other.urls.txt"
    write_url_list(other, [(f"{b['gh'].url}/raw/{REPO}/{COMMIT}/rgb/{n}", "0" * 64) for n in reversed(VIEWS)], "x")
    with pytest.raises(TargetError, match=r"other\.urls\.txt.*entry 1"):
        taskonomy_targets(b["probe"], other, ["depth_zbuffer"], b["cache"])


def test_target_file_stage_records_the_cache_hashes_and_verifies_them_on_a_rerun(building):
    from tasksim.targets.stage import CACHE_MANIFEST, target_file

    b = building
    out = b["tmp"] / "targets" / "probe.h5"
    opts = {"size": None, "user": {}}
    target_file("taskonomy", b["probe"], out, ["segment_semantic", "depth_zbuffer"], opts,
                url_list=str(b["url_list"]), cache_dir=str(b["cache"]))
    manifest = json.loads((b["cache"] / CACHE_MANIFEST).read_text())
    assert manifest == recorded_sha256(out) and len(manifest) == 2 * len(VIEWS)
    np.testing.assert_array_equal(read_task_labels(out, "segment_semantic").values, b["truth"]["semantic"])
    # the server changes a file after it was cached and recorded: a rerun whose cached copy was
    # lost fetches it again and refuses it, naming it; the target file already written is kept
    name = "point_7_view_0_domain_segmentsemantic.png"
    b["folders"]["segment_semantic"][name] = png(np.ones((6, 6), np.uint8))
    (b["cache"] / "segment_semantic" / name).unlink()
    with pytest.raises(LabelFileError, match=rf"{name}.*SHA-256 mismatch"):
        target_file("taskonomy", b["probe"], b["tmp"] / "again.h5", ["segment_semantic"], opts,
                    url_list=str(b["url_list"]), cache_dir=str(b["cache"]))
    assert out.exists() and not (b["tmp"] / "again.h5").exists()
    (b["cache"] / CACHE_MANIFEST).write_text("[1, 2]")
    with pytest.raises(ValueError, match=rf"label cache manifest .*{CACHE_MANIFEST}"):
        target_file("taskonomy", b["probe"], b["tmp"] / "again.h5", ["depth_zbuffer"], opts,
                    url_list=str(b["url_list"]), cache_dir=str(b["cache"]))


def test_target_file_stage_reads_a_users_class_csv_for_a_folder_probe(tmp_path):
    from tasksim.probe import build_probe_set
    from tasksim.targets.stage import target_file

    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(["c.png", "a.png", "b.png", "d.png"]):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(images / name)
    probe = tmp_path / "probe.h5"
    build_probe_set({"probe": {"source": "folder", "n_images": 3, "seed": 0, "allow_fewer": False,
                               "folder": {"path": str(images), "list_file": None}},
                     "preprocessing": {"resolution": 8}}, probe)
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label\na.png,cat\nb.png,dog\nc.png,dog\nd.png,bird\n")
    user = {"task": "pets", "kind": "class", "class_csv": str(csv), "map_dir": None}
    out = tmp_path / "targets.h5"
    target_file("user", probe, out, ["pets"], {"size": 8, "user": user}, image_dir=str(images))
    ids = [i.decode() for i in h5py.File(probe)["ids"][()]]
    want = {"a.png": 1, "b.png": 2, "c.png": 2, "d.png": 0}  # bird, cat, dog in sorted order
    np.testing.assert_array_equal(read_task_labels(out, "pets").values, [want[i] for i in ids])
    csv.write_text("image,label\na.png,cat\n")
    with pytest.raises(LabelFileError, match=r"labels\.csv has no label"):
        target_file("user", probe, tmp_path / "bad.h5", ["pets"], {"size": 8, "user": user},
                    image_dir=str(images))


# ------------------------------------------------------------------ a user's own task


def test_csv_class_names_map_to_sorted_ints_in_probe_order(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label\nb.png,dog\na.png,cat\nc.png,dog\nd.png,bird\n")
    got = class_labels_from_csv(csv, ["c.png", "a.png", "b.png"], known=["a.png", "b.png", "c.png", "d.png"])
    assert got.class_names == ("bird", "cat", "dog") and got.n_classes == 3
    np.testing.assert_array_equal(got.values, [2, 1, 2])
    ints = tmp_path / "ints.csv"
    ints.write_text("image,label\na.png,4\nb.png,0\n")
    got = class_labels_from_csv(ints, ["a.png", "b.png"])
    np.testing.assert_array_equal(got.values, [4, 0])
    assert got.n_classes == 5 and got.class_names is None


@pytest.mark.parametrize("text, ids, match", [
    ("image,label\na.png,cat\n", ["a.png", "b.png"], r"bad\.csv has no label.*b\.png"),
    ("image,label\na.png,cat\nzz.png,dog\n", ["a.png"], r"bad\.csv labels 1 image.*zz\.png"),
    ("image,label\na.png,cat\na.png,dog\n", ["a.png"], r"bad\.csv, line 3.*twice"),
    ("name,class\na.png,cat\n", ["a.png"], r"bad\.csv.*header"),
    ("image,label\na.png,cat,extra\n", ["a.png"], r"bad\.csv, line 2"),
])
def test_csv_errors_name_the_file(tmp_path, text, ids, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(LabelFileError, match=match):
        class_labels_from_csv(path, ids)


@pytest.fixture()
def user_folders(tmp_path):
    images, maps = tmp_path / "images", tmp_path / "maps"
    (images / "sub").mkdir(parents=True)
    maps.joinpath("sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.png"):
        Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(images / name)  # 8 high, 6 wide
    a = np.arange(48, dtype=np.uint8).reshape(8, 6)
    b = (np.arange(48).reshape(8, 6) % 5).astype(np.int64)
    (maps / "a.png").write_bytes(png(a))
    np.save(maps / "sub" / "b.npy", b)
    return {"images": images, "maps": maps, "a": a, "b": b, "ids": ["sub/b.png", "a.jpg"]}


def test_label_maps_match_stems_and_are_cropped_like_the_images(user_folders):
    u = user_folders
    got = label_maps_from_folder(u["maps"], u["ids"], "dense_class", image_dir=u["images"])
    assert got.values.shape == (2, 6, 6) and got.n_classes == 47 + 1
    np.testing.assert_array_equal(got.values[0], u["b"][1:7])  # centre 6 x 6 of an 8 x 6 map
    np.testing.assert_array_equal(got.values[1], u["a"][1:7])
    reg = label_maps_from_folder(u["maps"], u["ids"], "dense_regression", image_dir=u["images"], size=3)
    np.testing.assert_allclose(reg.values[1, 0, 0, 0], u["a"][1:3, 0:2].mean() / 255.0, rtol=1e-6)


def test_label_map_errors_name_the_file(user_folders):
    u = user_folders
    (u["maps"] / "a.png").rename(u["maps"] / "a.tmp")
    with pytest.raises(LabelFileError, match=r"a\.tmp: not a label map"):
        label_maps_from_folder(u["maps"], u["ids"], "dense_class")
    (u["maps"] / "a.tmp").unlink()
    with pytest.raises(LabelFileError, match=r"no label map for probe image 'a\.jpg'.*a\.png or a\.npy"):
        label_maps_from_folder(u["maps"], u["ids"], "dense_class")
    (u["maps"] / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(LabelFileError, match=r"maps/a\.png"):
        label_maps_from_folder(u["maps"], u["ids"], "dense_class")
    (u["maps"] / "a.png").write_bytes(png(np.zeros((5, 6), np.uint8)))
    with pytest.raises(LabelFileError, match=r"a\.png: shape \(5, 6\) but its image a\.jpg is 8 x 6"):
        label_maps_from_folder(u["maps"], u["ids"], "dense_class", image_dir=u["images"])
    (u["maps"] / "extra.png").write_bytes(png(np.zeros((8, 6), np.uint8)))
    with pytest.raises(LabelFileError, match=r"extra\.png"):
        label_maps_from_folder(u["maps"], u["ids"], "dense_class")
    (u["maps"] / "extra.png").unlink()
    np.save(u["maps"] / "a.npy", np.zeros((8, 6)))
    with pytest.raises(LabelFileError, match=r"a\.npy and .*a\.png|a\.png and .*a\.npy"):
        label_maps_from_folder(u["maps"], u["ids"], "dense_class")


# ------------------------------------------------------------------ the target file


def test_target_file_round_trip_and_attributes(mini_probe, tmp_path):
    labels = minitaskonomy_targets(mini_probe, ["normal", "class_object", "segment_unsup2d", "room_layout"])
    path = write_targets(tmp_path / "targets.h5", labels, mini_probe)
    info = probe_info(mini_probe)
    for task, item in labels.items():
        values, kind = read_targets(path, task)
        assert kind == item.kind
        np.testing.assert_array_equal(values, item.values)
        assert values.dtype == item.values.dtype
    with h5py.File(path) as f:
        assert f.attrs["probe_sha256"] == info["content_sha256"]
        assert [i.decode() for i in f["ids"][()]] == info["ids"]
        assert f["labels/normal"].attrs["label_kind"] == "dense_regression"
        assert f["labels/normal"].attrs["n_channels"] == 3
        assert f["labels/class_object"].attrs["n_classes"] == TASK_SPECS["class_object"].out
        assert "n_classes" not in f["labels/segment_unsup2d"].attrs
    back = read_task_labels(path, "rgb2sfnorm")  # any spelling
    assert back.task == "normal" and back.source == "minitaskonomy:generated:seed=1"
    with pytest.raises(TargetError, match="no labels for task 'depth_zbuffer'"):
        read_targets(path, "depth_zbuffer")


def test_reader_refuses_activations_of_another_probe_set(mini_probe, tmp_path):
    labels = minitaskonomy_targets(mini_probe, ["class_object"])
    path = write_targets(tmp_path / "targets.h5", labels, mini_probe)
    info = probe_info(mini_probe)

    def activations(name, sha):
        act = tmp_path / name
        with h5py.File(act, "w") as f:
            f.attrs["probe_sha256"] = sha
            str_dataset(f, "ids", info["ids"])
        return act

    same = activations("same.h5", info["content_sha256"])
    values, kind = read_targets(path, "class_object", activations=same)
    assert kind == "class" and values.shape == (4,)
    other = activations("other_probe.h5", "f" * 64)
    with pytest.raises(ProbeMismatchError, match=r"targets\.h5.*other_probe\.h5"):
        read_targets(path, "class_object", activations=other)


def test_write_refuses_labels_of_another_size_and_leaves_no_file(mini_probe, tmp_path):
    wrong = TaskLabels("class_object", "class", np.zeros(3, np.int64), n_classes=4)
    with pytest.raises(TargetError, match="3 labels for the 4 images"):
        write_targets(tmp_path / "t.h5", [wrong], mini_probe)
    assert not list(tmp_path.iterdir())
