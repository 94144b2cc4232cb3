"""Tests of the procedural scene renderer and its analytic labels (tasksim.scenes)."""

from __future__ import annotations

import numpy as np
import pytest

from tasksim import scenes
from tasksim.io import open_h5, read_str, sha256_file

SIZE = 48


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
    return scenes.render_batch(8, SIZE, seed=3)


def test_shapes_and_dtypes(batch):
    n, s = 8, SIZE
    assert batch["rgb"].shape == (n, s, s, 3) and batch["rgb"].dtype == np.uint8
    assert batch["normal"].shape == (n, s, s, 3)
    assert batch["curvature"].shape == (n, s, s, 2)
    assert batch["class_object"].shape == (n,)
    assert batch["room_layout"].shape == (n, 8)
    for task in scenes.LABEL_TASKS:
        assert task in batch, task
        assert np.all(np.isfinite(batch[task].astype(np.float64))), task


def test_normals_unit_and_facing_camera(batch):
    dirs, _ = scenes.camera_rays(SIZE)
    n = batch["normal"].reshape(len(batch["normal"]), -1, 3).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-5)
    facing = np.einsum("npc,pc->np", n, dirs)
    assert facing.max() < 0  # every visible surface faces the camera
    # reshading is the headlight shading max(0, n . (-ray))
    np.testing.assert_allclose(batch["reshading"].reshape(len(n), -1), -facing, atol=1e-5)


def test_depth_consistent_with_distance(batch):
    _, cos_axis = scenes.camera_rays(SIZE)
    z = batch["depth_zbuffer"].reshape(len(batch["rgb"]), -1)
    e = batch["depth_euclidean"].reshape(len(batch["rgb"]), -1)
    np.testing.assert_allclose(e * cos_axis, z, rtol=1e-5)
    assert (e >= z).all() and z.min() > 0
    # centre pixel ray is (almost) the optical axis: distance ~ z there
    c = SIZE // 2
    np.testing.assert_allclose(batch["depth_euclidean"][:, c, c], batch["depth_zbuffer"][:, c, c],
                               rtol=2e-3)


def test_occlusion_edges_where_depth_jumps(batch):
    d = batch["depth_euclidean"]
    edge = batch["edge_occlusion"] > 0
    assert edge.any()
    # every big jump between vertical neighbours is marked on both sides
    a, b = d[:, :-1], d[:, 1:]
    big = np.abs(a - b) > 0.5 * np.minimum(a, b)
    assert big.any()
    assert edge[:, :-1][big].all() and edge[:, 1:][big].all()
    # every marked pixel has some 4-neighbour with a jump above the threshold
    pad = np.pad(d, ((0, 0), (1, 1), (1, 1)), mode="edge")
    nb = np.stack([pad[:, :-2, 1:-1], pad[:, 2:, 1:-1], pad[:, 1:-1, :-2], pad[:, 1:-1, 2:]])
    rel = np.abs(nb - d) / np.minimum(nb, d)
    assert (rel.max(0)[edge] > scenes.OCCLUSION_JUMP).all()
    # smooth depth (no jump anywhere around) is never an edge
    assert not edge[rel.max(0) < scenes.OCCLUSION_JUMP / 2].any()


def test_class_ids_in_range(batch):
    sem = batch["segment_semantic"]
    assert sem.min() >= 0 and sem.max() < len(scenes.SEMANTIC_CLASSES)
    assert set(np.unique(sem)) >= {0, 1}  # floor and walls are visible somewhere
    cls = batch["class_object"]
    assert ((cls >= 0) & (cls < len(scenes.OBJECT_CLASSES))).all()
    # class_object is the object class with most pixels in the central quarter-side window
    size = sem.shape[1]
    lo, hi = 3 * size // 8, 5 * size // 8
    for s, c in zip(sem, cls):
        counts = np.bincount(s[lo:hi, lo:hi].ravel(), minlength=6)[3:]
        assert c == (np.argmax(counts) + 1 if counts.max() else 0)
    for key in ("segment_unsup2d", "segment_unsup25d"):
        for seg in batch[key]:
            u = np.unique(seg)
            np.testing.assert_array_equal(u, np.arange(len(u)))  # consecutive ids
    # geometric regions refine semantic classes: one region never spans two classes
    for seg, s in zip(batch["segment_unsup25d"], sem):
        pairs = np.unique(np.stack([seg.ravel(), s.ravel()], 1), axis=0)
        assert len(np.unique(pairs[:, 0])) == len(pairs)


def test_floor_normal_points_up_in_camera_frame(batch):
    # floor normal in camera frame = camera's world->camera rotation of (0,1,0): all floor pixels
    # of an image share it, and it has a positive y component (camera is not upside down)
    for n, s in zip(batch["normal"], batch["segment_semantic"]):
        floor = n[s == 0]
        if len(floor):
            np.testing.assert_allclose(floor, floor[:1].repeat(len(floor), 0), atol=1e-5)
            assert floor[0, 1] > 0.5


def test_images_are_not_noise(batch):
    x = batch["rgb"].astype(np.float64).mean(-1)
    a, b = x[:, :, :-1].ravel(), x[:, :, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.8
    assert x.std() > 10  # and not flat
    # sparse labels are sparse, not empty
    for key in ("edge_texture", "edge_occlusion", "keypoints2d", "keypoints3d"):
        v = batch[key]
        assert v.max() > 0 and (v > 0.05 * v.max()).mean() < 0.5, key
    noisy = batch["input_noisy"].astype(np.float64) - batch["rgb"]
    assert 10 < noisy.std() < 40
    gray = batch["input_gray"]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_determinism_and_rgb_only_path():
    a = scenes.render_batch(3, 32, seed=11)
    b = scenes.render_batch(3, 32, seed=11)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(scenes.render_rgb(3, 32, seed=11), a["rgb"])
    np.testing.assert_array_equal(scenes.render_rgb(2, 32, seed=11, start=1), a["rgb"][1:])
    c = scenes.render_rgb(3, 32, seed=12)
    assert not np.array_equal(c, a["rgb"])


def test_probe_resolution_render():
    img = scenes.render_rgb(1, 256, seed=0)
    assert img.shape == (1, 256, 256, 3) and img.dtype == np.uint8
    # the same scene at 64 px is a downsampled version of the 256 px one
    small = scenes.render_rgb(1, 64, seed=0)[0].astype(np.float64)
    big = img[0].astype(np.float64).reshape(64, 4, 64, 4, 3).mean((1, 3))
    assert np.corrcoef(small.ravel(), big.ravel())[0, 1] > 0.9


def test_h5_roundtrip_and_byte_reproducible(tmp_path):
    p1 = scenes.render_split(tmp_path / "a.h5", 4, 24, seed=5, start=10)
    p2 = scenes.render_split(tmp_path / "b.h5", 4, 24, seed=5, start=10)
    assert sha256_file(p1) == sha256_file(p2)
    with open_h5(p1) as f:
        ids = read_str(f["ids"])
        assert ids == [f"scene_{i:06d}" for i in range(10, 14)]
        assert f.attrs["source"] == "generated:seed=5"
        assert f.attrs["content_sha256"] == scenes.content_sha256(ids, f["images"][()])
        assert f["images"].shape == (4, 24, 24, 3)
    back = scenes.read_scenes_h5(p1)
    ref = scenes.render_batch(4, 24, seed=5, start=10)
    for task in scenes.LABEL_TASKS:
        np.testing.assert_array_equal(back[task], ref[task])
    np.testing.assert_array_equal(back["input_noisy"], ref["input_noisy"])


def test_content_digest_is_the_probe_identity():
    import hashlib

    from tasksim.io import content_sha256

    images = scenes.render_rgb(2, 16, seed=1)
    ids = scenes.scene_ids(2)
    ref = hashlib.sha256(b"".join(i.encode() + b"\0" + img.tobytes() for i, img in zip(ids, images)))
    assert content_sha256(ids, images) == ref.hexdigest()
    assert content_sha256(ids[::-1], images[::-1]) != ref.hexdigest()  # row order is part of it
