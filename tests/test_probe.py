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
    cfg = validate_config({"probe": {"source": "folder", "n_images": 2,
                                     "folder": {"path": str(root), "list_file": str(lst)}},
                           "preprocessing": {"resolution": 16}})
    build_probe_set(cfg, tmp_path / "p.h5", progress=False)
    p = read_probe(tmp_path / "p.h5")
    assert p["ids"] == ["gray16.png", "sub/im1.png"]


def test_unreadable_image_fails_naming_it(tmp_path):
    root = _folder(tmp_path)
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    cfg = validate_config({"probe": {"source": "folder", "n_images": 100, "allow_fewer": True,
                                     "folder": {"path": str(root)}},
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


def test_fewer_images_than_asked_fail_naming_folder_and_counts(tmp_path):
    root = _folder(tmp_path)  # 6 images
    cfg = validate_config({"probe": {"source": "folder", "n_images": 12, "folder": {"path": str(root)}},
                           "preprocessing": {"resolution": 16}})
    with pytest.raises(ValueError, match=r"imgs holds 6 images but probe.n_images asks for 12"):
        build_probe_set(cfg, tmp_path / "p.h5", progress=False)
    assert not (tmp_path / "p.h5").exists()
    # allowed explicitly: all six are used, and the probe file says how many were asked for
    cfg["probe"]["allow_fewer"] = True
    build_probe_set(cfg, tmp_path / "p.h5", progress=False)
    p = read_probe(tmp_path / "p.h5")
    assert len(p["ids"]) == 6 and p["n_images"] == 6 and p["n_requested"] == 12


def test_a_single_image_is_refused_even_when_fewer_are_allowed(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a.png")
    cfg = validate_config({"probe": {"source": "folder", "n_images": 4, "allow_fewer": True,
                                     "folder": {"path": str(root)}}, "preprocessing": {"resolution": 16}})
    with pytest.raises(ValueError, match="yields 1 image.*at least 2"):
        build_probe_set(cfg, tmp_path / "p.h5", progress=False)


def test_exif_rotated_jpeg_is_stored_as_displayed(tmp_path):
    from tasksim.probe import load_image

    # a landscape sensor image whose EXIF says "rotate 90 degrees clockwise to display" (phones)
    sensor = np.zeros((40, 80, 3), np.uint8)
    sensor[:, :40] = (250, 20, 20)  # left half red, right half blue
    sensor[:, 40:] = (20, 20, 250)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(sensor).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    shown = np.asarray(Image.fromarray(sensor).transpose(Image.Transpose.ROTATE_270))  # what a viewer shows
    assert shown.shape == (80, 40, 3)
    img = load_image(tmp_path / "phone.jpg", 32).astype(int)
    # displayed: red on top, blue below (stored upright it would be red left, blue right)
    assert img[:8, :, 0].mean() > 200 and img[-8:, :, 2].mean() > 200
    assert img[:8, :, 2].mean() < 60 and img[-8:, :, 0].mean() < 60
