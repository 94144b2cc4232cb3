"""Activation extraction: HDF5 layout and attributes, resume, fast path vs fp32 agreement."""
import json

import h5py
import numpy as np
import pytest
from scipy.stats import spearmanr

from tasksim.config import validate_config
from tasksim.extract import extract_activations
from tasksim.similarity.rsa import rdm, upper_triangle
from tasksim.zoo import load_model, model_specs


def _spec_model(standin_zoo, task="normal"):
    cfg = validate_config({"tasks": [task], "taskonomy": {
        "weights_source": str(standin_zoo), "weights_manifest": str(standin_zoo / "SHA256SUMS")}})
    spec = model_specs(cfg)[task]
    return spec, load_model(spec, spec.weights)


def test_layout_and_attributes(standin_zoo, scene_probe, tmp_path):
    spec, model = _spec_model(standin_zoo)
    out = extract_activations(spec, model, scene_probe, tmp_path / "normal.h5", batch_size=4,
                              progress=False)
    with h5py.File(out) as f, h5py.File(scene_probe) as p:
        assert [s.decode() for s in f["ids"][()]] == [s.decode() for s in p["ids"][()]]
        shapes = {k: v.shape for k, v in f["layers"].items()}
        assert shapes == {"block1": (6, 256, 32, 32), "block2": (6, 512, 16, 16),
                          "block3": (6, 1024, 16, 16), "block4": (6, 2048, 16, 16),
                          "encoder_output": (6, 8, 16, 16)}
        eo = f["layers"]["encoder_output"]
        assert eo.shape == (6, 8, 16, 16) and eo.chunks == (1, 8, 16, 16) and eo.compression == "lzf"
        assert eo.dtype == np.float16
        a = f.attrs
        assert a["weights_sha256"] == spec.sha256 and a["probe_sha256"] == p.attrs["content_sha256"]
        assert json.loads(a["preprocessing"])["low_saturation"] is True
        assert a["compute_dtype"] == "bfloat16" and a["storage_dtype"] == "float16"
        assert {"torch", "numpy", "h5py", "tasksim"} <= set(json.loads(a["versions"]))
    assert not (tmp_path / "normal.h5.partial").exists()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_interrupted_extraction_resumes_and_matches(standin_zoo, scene_probe, tmp_path, precision):
    """An interrupted run resumes and ends equal to an uninterrupted one (for int8 this needs the
    calibration, on the first probe images, to rebuild the same int8 model)."""
    spec, model = _spec_model(standin_zoo)
    ref = extract_activations(spec, model, scene_probe, tmp_path / "ref.h5", batch_size=2,
                              precision=precision, progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_first(rows):
        if rows == 2:
            raise Interrupt

    out = tmp_path / "out.h5"
    with pytest.raises(Interrupt):
        extract_activations(spec, model, scene_probe, out, batch_size=2, precision=precision,
                            progress=False, on_batch=stop_after_first)
    assert not out.exists()  # no corrupt final file
    seen = []
    extract_activations(spec, model, scene_probe, out, batch_size=2, precision=precision,
                        progress=False, on_batch=seen.append)
    assert seen == [4, 6]  # resumed after the first batch
    with h5py.File(ref) as a, h5py.File(out) as b:
        for k in a["layers"]:
            np.testing.assert_array_equal(a["layers"][k][()], b["layers"][k][()])


def test_changed_provenance_restarts_instead_of_resuming(standin_zoo, scene_probe, tmp_path):
    spec, model = _spec_model(standin_zoo)

    def stop(rows):
        raise KeyboardInterrupt

    out = tmp_path / "o.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_activations(spec, model, scene_probe, out, batch_size=2, precision="fp32",
                            progress=False, on_batch=stop)
    seen = []
    extract_activations(spec, model, scene_probe, out, batch_size=2, precision="bf16",
                        progress=False, on_batch=seen.append)
    assert seen == [2, 4, 6]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_fast_path_agrees_with_fp32(standin_zoo, tmp_path, precision):
    """Fast paths (folded batch norm, bf16, channels_last; int8 adds int8 residual branches,
    calibrated on the first 16 images) vs plain fp32: encoder_output RDM Spearman >= 0.999 on 24
    generated scenes (276 image pairs; with a dozen images one swapped pair of nearly equal
    distances already moves the rank correlation by ~0.001)."""
    from tasksim.probe import write_probe
    from tasksim.scenes import render_rgb

    n = 24
    imgs = render_rgb(n, 256, seed=11)
    probe = tmp_path / "p.h5"
    write_probe(probe, [f"s{i}" for i in range(n)], list(imgs), n, 256, "generated:seed=11")
    for task in ("normal", "edge_texture"):
        spec, model = _spec_model(standin_zoo, task)
        fast = extract_activations(spec, model, probe, tmp_path / f"{task}_fast.h5", batch_size=8,
                                   precision=precision, channels_last=True, progress=False)
        slow = extract_activations(spec, model, probe, tmp_path / f"{task}_fp32.h5", batch_size=1,
                                   precision="fp32", channels_last=False, storage_dtype="float32",
                                   progress=False)
        with h5py.File(fast) as a, h5py.File(slow) as b:
            assert a.attrs["compute_dtype"].startswith({"bf16": "bfloat16", "int8": "int8"}[precision])
            ra = rdm(a["layers"]["encoder_output"][()].astype(np.float64))
            rb = rdm(b["layers"]["encoder_output"][()].astype(np.float64))
        rho = spearmanr(upper_triangle(ra), upper_triangle(rb))[0]
        assert rho >= 0.999, f"{task}: {precision} path RDM Spearman {rho:.5f} < 0.999"


def _user_spec_model(tmp_path, scale):
    from toy_models import save_weights

    from tasksim.zoo import user_spec

    weights = tmp_path / "toy.pth"
    if not weights.exists():
        save_weights(weights)
    spec = user_spec({"name": "toy", "builder": "toy_models:scaled_net", "weights": str(weights),
                      "layers": ["conv", "output"], "builder_kwargs": {"scale": scale}})
    return spec, load_model(spec, weights)


def test_changed_builder_kwargs_restart_instead_of_mixing_two_models(scene_probe, tmp_path, caplog):
    """Interrupted with scale 1, rerun with scale 2 (same weights file): the partial rows of the
    old model are discarded, the result equals a clean run with scale 2, and the log says why."""
    from tasksim.io import sha256_file

    spec1, model1 = _user_spec_model(tmp_path, 1.0)
    spec2, model2 = _user_spec_model(tmp_path, 2.0)
    sha = sha256_file(tmp_path / "toy.pth")
    kw = {"batch_size": 2, "precision": "fp32", "progress": False, "weights_sha256": sha}
    ref = extract_activations(spec2, model2, scene_probe, tmp_path / "ref.h5", **kw)

    def stop(rows):
        raise KeyboardInterrupt

    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_activations(spec1, model1, scene_probe, out, on_batch=stop, **kw)
    seen = []
    with caplog.at_level("WARNING", logger="tasksim.extract"):
        extract_activations(spec2, model2, scene_probe, out, on_batch=seen.append, **kw)
    assert seen == [2, 4, 6]  # started over
    assert any("not resuming" in r.message and "builder_kwargs" in r.message for r in caplog.records)
    with h5py.File(ref) as a, h5py.File(out) as b:
        assert a.attrs["resume_key"] == b.attrs["resume_key"]
        assert json.loads(b.attrs["resume_key"])["builder_kwargs"] == {"scale": 2.0}
        for k in a["layers"]:
            np.testing.assert_array_equal(a["layers"][k][()], b["layers"][k][()])
        assert np.abs(b["layers"]["output"][()]).max() > 0


def test_same_resume_key_resumes_user_model(scene_probe, tmp_path):
    spec, model = _user_spec_model(tmp_path, 1.0)

    def stop(rows):
        raise KeyboardInterrupt

    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_activations(spec, model, scene_probe, out, batch_size=2, precision="fp32",
                            progress=False, on_batch=stop)
    seen = []
    extract_activations(spec, model, scene_probe, out, batch_size=2, precision="fp32",
                        progress=False, on_batch=seen.append)
    assert seen == [4, 6]


def test_float16_overflow_is_a_clear_error_and_leaves_no_file(scene_probe, tmp_path):
    """Values above 65504 would be stored as inf under float16: the extraction fails naming the
    model, the layer, the largest magnitude and the fix, and leaves neither file."""
    from tasksim.io import NonFiniteError

    spec, model = _user_spec_model(tmp_path, 1.0e7)
    out = tmp_path / "big.h5"
    with pytest.raises(NonFiniteError, match=r"model toy layer (conv|output) .*magnitude .*e\+0[5-9].*"
                                             r"extraction\.storage_dtype: float32"):
        extract_activations(spec, model, scene_probe, out, batch_size=2, precision="fp32",
                            storage_dtype="float16", progress=False)
    assert not out.exists() and not (tmp_path / "big.h5.partial").exists()
    extract_activations(spec, model, scene_probe, out, batch_size=2, precision="fp32",
                        storage_dtype="float32", progress=False)  # the suggested fix works
    with h5py.File(out) as f:
        assert np.isfinite(f["layers"]["output"][()]).all() and np.abs(f["layers"]["output"][()]).max() > 65504
