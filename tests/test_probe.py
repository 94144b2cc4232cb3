"""Probe sets: sources, deterministic choice, freezing, content hash, unreadable files."""
import numpy as np
import pytest
from PIL import Image

from tasksim.config import validate_config
from tasksim.probe import ProbeImageError, build_probe_set, choose, read_probe


def _folder(tmp_path, n=5):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = (rng.random((40 + i, 60, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / ("sub" if i % 2 else ".") / f"im{i}.png")
    Image.fromarray(np.full((30, 30), 9, np.uint16)).save(root / "gray16.png")
    return root


def test_choice_is_deterministic_sorted_and_seeded():
    c = [f"f{i:03d}" for i in range(50)]
    a, b = choose(c[::-1], 10, 1), choose(c, 10, 1)
    assert a == b == sorted(a) and len(set(a)) == 10
    assert choose(c, 10, 2) != a
    assert choose(c[:5], 10, 0) == c[:5]


def test_folder_source_freezes_uint8_images_ids_and_hash(tmp_path):
    root = _folder(tmp_path)
    cfg = validate_config({"probe": {"source": "folder", "n_images": 4, "folder": {"path": str(root)}},
                           "preprocessing": {"resolution": 32}})
    out = tmp_path / "p.h5"
    digest = build_probe_set(cfg, out, progress=False)
    p = read_probe(out)
    assert p["images"].shape == (4, 32, 32, 3) and p["images"].dtype == np.uint8
    assert len(p["ids"]) == 4 and p["content_sha256"] == digest and p["source"].startswith("folder:")
    out2 = tmp_path / "p2.h5"
    assert build_probe_set(cfg, out2, progress=False) == digest  # reproducible


def test_folder_with_list_file_keeps_its_order(tmp_path):
    root = _folder(tmp_path)
    lst = tmp_path / "list.txt"
    lst.write_text("gray16.png\nsub/im1.png\n")
    cfg = validate_config({"probe": {"source": "folder", "n_images": 10,
                                     "folder": {"path": str(root), "list_file": str(lst)}},
                           "preprocessing": {"resolution": 16}})
    build_probe_set(cfg, tmp_path / "p.h5", progress=False)
    p = read_probe(tmp_path / "p.h5")
    assert p["ids"] == ["gray16.png", "sub/im1.png"]


def test_unreadable_image_fails_naming_it(tmp_path):
    root = _folder(tmp_path)
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    cfg = validate_config({"probe": {"source": "folder", "n_images": 100, "folder": {"path": str(root)}},
                           "preprocessing": {"resolution": 16}})
    with pytest.raises(ProbeImageError, match="broken.png"):
        build_probe_set(cfg, tmp_path / "p.h5", progress=False)
    assert not (tmp_path / "p.h5").exists()


def test_url_list_source_via_file_urls(tmp_path):
    root = _folder(tmp_path)
    lst = tmp_path / "urls.txt"
    lst.write_text("\n".join((root / f"im{i}.png").as_uri() for i in (0, 2, 4)) + "\n")
    cfg = validate_config({"probe": {"source": "urls", "n_images": 3, "urls": {"list_file": str(lst)}},
                           "preprocessing": {"resolution": 16}})
    build_probe_set(cfg, tmp_path / "p.h5", cache_dir=tmp_path / "cache", progress=False)
    assert read_probe(tmp_path / "p.h5")["ids"] == ["im0.png", "im2.png", "im4.png"]


def test_repository_mirror_source(tmp_path):
    root = _folder(tmp_path)
    cfg = validate_config({"probe": {"source": "urls", "n_images": 2, "urls": {"mirror": str(root)}},
                           "preprocessing": {"resolution": 16}})
    build_probe_set(cfg, tmp_path / "p.h5", cache_dir=tmp_path / "cache", progress=False)
    p = read_probe(tmp_path / "p.h5")
    assert len(p["ids"]) == 2 and "alexsax/taskonomy-sample-model-1" in p["source"]


def test_generated_scenes_are_structured_not_noise(tmp_path):
    cfg = validate_config({"probe": {"source": "generated", "n_images": 3, "seed": 5},
                           "preprocessing": {"resolution": 64}})
    d1 = build_probe_set(cfg, tmp_path / "a.h5", progress=False)
    assert build_probe_set(cfg, tmp_path / "b.h5", progress=False) == d1
    img = read_probe(tmp_path / "a.h5")["images"].astype(float).mean(axis=3)
    corr = np.corrcoef(img[:, :, :-1].ravel(), img[:, :, 1:].ravel())[0, 1]
    assert corr > 0.8  # neighbouring pixels agree: scenes, not uniform noise
