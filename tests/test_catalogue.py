"""Catalogue of bad inputs and faults: each case sets up one mistake a user can make (or one fault
of the data) and states the exception and the message fragments that must name the culprit.

A case is ``Case(name, setup, exc, fragments)``: ``setup(tmp_path)`` prepares files and returns the
action to run; ``fragments`` may use ``{tmp}`` for ``tmp_path``. Every case is fast (no Snakemake
run; the dry-run versions of the config cases are in tests/test_config.py and tests/test_pipeline.py).
"""
from __future__ import annotations

import fcntl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import yaml

from tasksim.config import ConfigError, load_config, validate_config
from tasksim.download import ChecksumError
from tasksim.io import NonFiniteError, open_h5, str_dataset
from tasksim.probe import ProbeImageError


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], Callable[[], Any]]
    exc: type[BaseException]
    fragments: tuple[str, ...]


def _validate(cfg: dict) -> Callable[[Path], Callable[[], Any]]:
    return lambda tmp: (lambda: validate_config(cfg))


def _config_file(text: str) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path):
        (tmp / "c.yaml").write_text(text)
        return lambda: load_config(tmp / "c.yaml")
    return setup


def _mini(rsa_layers: list[str]) -> dict:
    return {"minitaskonomy": {"enabled": True, "tasks": ["normal", "depth_zbuffer"]},
            "preprocessing": {"resolution": 64}, "similarity": {"methods": ["rsa"], "rsa": {"layers": rsa_layers}}}


def _user(layers: list[str], **sim) -> dict:
    return {"tasks": [], "models": [{"name": "mine", "builder": "toy_models:scaled_net",
                                     "weights": "mine.pth", "layers": layers}], "similarity": sim}


# ------------------------------------------------------------------ zoo

def _spec(tmp: Path, builder: str = "scaled_net", kwargs: dict | None = None, save=True):
    from toy_models import save_weights

    from tasksim.zoo import user_spec

    weights = tmp / "toy.pth"
    if save:
        save_weights(weights)
    return user_spec({"name": "mine", "builder": f"toy_models:{builder}", "weights": str(weights),
                      "layers": ["conv", "output"], "builder_kwargs": kwargs or {}})


def _build(builder: str, kwargs: dict):
    def setup(tmp):
        from tasksim.zoo import build_model

        spec = _spec(tmp, builder, kwargs)
        return lambda: build_model(spec)
    return setup


def _import(path: str):
    from tasksim.zoo import import_builder

    return lambda tmp: (lambda: import_builder(path))


def _load_weights(content: bytes | None, builder_kwargs: dict | None = None):
    def setup(tmp):
        from tasksim.zoo import load_model

        spec = _spec(tmp, kwargs=builder_kwargs, save=False)
        path = tmp / "w.pth"
        if content is not None:
            path.write_bytes(content)
        return lambda: load_model(spec, path)
    return setup


def _misfit_weights(tmp):
    from toy_models import save_weights

    from tasksim.zoo import load_model

    spec = _spec(tmp, kwargs={"width": 5}, save=False)
    save_weights(tmp / "w.pth", width=3)
    return lambda: load_model(spec, tmp / "w.pth")


def _manifest(text: str):
    def setup(tmp):
        from tasksim.zoo import read_manifest

        (tmp / "SHA256SUMS").write_text(text)
        return lambda: read_manifest(tmp / "SHA256SUMS")
    return setup


def _missing_manifest(tmp):
    from tasksim.zoo import model_specs

    cfg = validate_config({"tasks": ["normal"], "taskonomy": {"weights_manifest": str(tmp / "nope")}})
    return lambda: model_specs(cfg)


def _unlisted_task(tmp):
    from tasksim.zoo import taskonomy_spec

    return lambda: taskonomy_spec("normal", str(tmp), {"depth_zbuffer": "x.pth"}, ["block1"])


def _missing_weights_source(tmp):
    from tasksim.download import fetch

    return lambda: fetch(str(tmp / "nope_encoder.pth"), tmp / "out.pth", None)


# ------------------------------------------------------------------ probe sets and extraction

def _probe(tmp: Path, n: int = 4, size: int = 16) -> Path:
    from tasksim.probe import write_probe

    rng = np.random.default_rng(0)
    imgs = [(rng.random((size, size, 3)) * 255).astype(np.uint8) for _ in range(n)]
    path = tmp / "probe.h5"
    write_probe(path, [f"i{k}" for k in range(n)], imgs, n, size, "test")
    return path


def _extract(kwargs: dict, storage_dtype: str = "float16", resolution: int | None = None,
             compression: str = "lzf"):
    def setup(tmp):
        from dataclasses import replace

        from tasksim.extract import extract_activations
        from tasksim.zoo import load_model

        spec = _spec(tmp, kwargs=kwargs)
        if resolution:
            spec = replace(spec, resolution=resolution)
        model = load_model(spec, spec.weights)
        probe = _probe(tmp)
        return lambda: extract_activations(spec, model, probe, tmp / "act.h5", batch_size=2,
                                           precision="fp32", storage_dtype=storage_dtype,
                                           compression=compression, progress=False)
    return setup


def _probe_folder(tmp):
    from tasksim.probe import build_probe_set

    cfg = validate_config({"probe": {"source": "folder", "n_images": 2, "folder": {"path": str(tmp / "nope")}},
                           "preprocessing": {"resolution": 16}})
    return lambda: build_probe_set(cfg, tmp / "p.h5", progress=False)


def _corrupt_image(tmp):
    from PIL import Image

    from tasksim.probe import build_probe_set

    root = tmp / "imgs"
    root.mkdir()
    for i in range(2):
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(root / f"ok{i}.png")
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    cfg = validate_config({"probe": {"source": "folder", "n_images": 3, "folder": {"path": str(root)}},
                           "preprocessing": {"resolution": 16}})
    return lambda: build_probe_set(cfg, tmp / "p.h5", progress=False)


def _too_few_images(tmp):
    from PIL import Image

    from tasksim.probe import build_probe_set

    root = tmp / "imgs"
    root.mkdir()
    for i in range(9):
        Image.fromarray(np.full((20, 20, 3), 20 * i, np.uint8)).save(root / f"im{i}.png")
    cfg = validate_config({"probe": {"source": "folder", "n_images": 12, "folder": {"path": str(root)}},
                           "preprocessing": {"resolution": 16}})
    return lambda: build_probe_set(cfg, tmp / "p.h5", progress=False)


def _bad_url_list(tmp):
    from tasksim.probe import build_probe_set

    lst = tmp / "urls.txt"
    lst.write_text("file:///a.png\nfile:///b.png not-a-hash\n")
    cfg = validate_config({"probe": {"source": "urls", "n_images": 2, "urls": {"list_file": str(lst)}},
                           "preprocessing": {"resolution": 16}})
    return lambda: build_probe_set(cfg, tmp / "p.h5", progress=False)


def _local_checksum(tmp):
    from tasksim.download import fetch

    (tmp / "w.pth").write_bytes(b"weights")
    return lambda: fetch(str(tmp / "w.pth"), tmp / "out" / "w.pth", "0" * 64)


def _string_where_number(tmp):
    return lambda: validate_config({"probe": {"n_images": "a hundred"}})


def _fake_activations(path: Path, model: str, layer_data: dict, sha: str = "ab" * 32, n: int = 8) -> Path:
    rng = np.random.default_rng(len(model))
    with h5py.File(path, "w") as f:
        str_dataset(f, "ids", [f"i{k}" for k in range(n)])
        g = f.create_group("layers")
        for name, arr in layer_data.items():
            g.create_dataset(name, data=rng.normal(size=(n, 6, 2, 2)) if arr is None else arr)
        f.attrs.update({"model": model, "probe_sha256": sha})
    return path


def _read_missing_layer(tmp):
    from tasksim.similarity.registry import hdf5_layer

    act = _fake_activations(tmp / "a.h5", "m", {"block1": None})
    return hdf5_layer(act, "block9")


def _open_missing(tmp):
    return lambda: open_h5(tmp / "missing.h5")


def _open_corrupt(tmp):
    (tmp / "corrupt.h5").write_bytes(b"not an hdf5 file")
    return lambda: open_h5(tmp / "corrupt.h5")


# ------------------------------------------------------------------ similarity

def _write_matrix(matrix: np.ndarray, models: list[str]):
    def setup(tmp):
        from tasksim.similarity.files import write_similarity

        return lambda: write_similarity(tmp / "m.h5", tmp / "m.csv", matrix, models, "cka_linear",
                                        "enc", {}, "ab" * 32, 8)
    return setup


_NAN = np.eye(3)
_NAN[1, 2] = _NAN[2, 1] = np.nan


def _rdm_constant(tmp):
    from tasksim.similarity.stage import rdm_file

    act = _fake_activations(tmp / "flat.h5", "flatnet", {"block2": np.ones((8, 6, 2, 2))})
    return lambda: rdm_file(act, tmp / "r.h5", ["block2"], "none", "pearson")


def _rdm_missing_layer(tmp):
    from tasksim.similarity.stage import rdm_file

    act = _fake_activations(tmp / "a.h5", "m", {"block1": None})
    return lambda: rdm_file(act, tmp / "r.h5", ["block1", "block9"], "center", "pearson")


def _cka_constant(method):
    def setup(tmp):
        from tasksim.similarity.stage import feature_similarity_file

        files = [_fake_activations(tmp / f"{m}.h5", m, {"enc": a})
                 for m, a in [("good", None), ("flatnet", np.ones((8, 6, 2, 2)))]]
        return lambda: feature_similarity_file(method, files, ["good", "flatnet"], "enc", {},
                                               tmp / "s.h5", tmp / "s.csv")
    return setup


def _other_probe(tmp):
    from tasksim.similarity.files import check_same_probe

    a = _fake_activations(tmp / "a.h5", "a", {"l": None})
    b = _fake_activations(tmp / "b.h5", "b", {"l": None}, sha="cd" * 32)
    return lambda: check_same_probe([a, b])


def _unknown_method(tmp):
    from tasksim.similarity.registry import compute_similarity

    return lambda: compute_similarity("cka_quadratic", [np.zeros((4, 2))])


# ------------------------------------------------------------------ precision, devices, locks

def _precision(name: str, device: str):
    from tasksim.extract import check_precision

    return lambda tmp: (lambda: check_precision(name, torch.device(device)))


def _locked(tmp):
    from tasksim.runlock import LOCK_NAME, hold_run_lock

    fh = open(tmp / LOCK_NAME, "a+")  # noqa: SIM115 - another open file description: a second holder
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    fh.write("pid=4242 host=othernode cwd=/home/someone/run since=2026-01-01T00:00:00\n")
    fh.flush()
    _KEEP.append(fh)
    return lambda: hold_run_lock([tmp])


_KEEP: list = []


CASES = [
    # configuration
    Case("unknown task name", _validate({"tasks": ["normal", "rgb2dpeth"]}), ConfigError,
         ("rgb2dpeth", "depth_zbuffer")),
    Case("unknown top-level key", _validate({"taks": ["normal"]}), ConfigError, ("taks",)),
    Case("wrong type of a key", _validate({"extraction": {"batch_size": "eight"}}), ConfigError,
         ("extraction.batch_size", "eight")),
    Case("unknown precision in the config", _validate({"extraction": {"precision": "fp8"}}), ConfigError,
         ("extraction.precision", "fp8")),
    Case("duplicate model names", _validate({"tasks": ["normal"], "models": [
        {"name": "normal", "builder": "m:f", "weights": "w.pth", "layers": ["output"]}]}), ConfigError,
         ("models", "['normal']", "used twice")),
    Case("stand-in group member not in tasks", _validate({"tasks": ["normal"], "standin": {
        "groups": {"g": ["normal", "reshading"]}}}), ConfigError, ("standin.groups.g", "reshading")),
    Case("RSA layer no model records", _validate({"tasks": ["normal"], "similarity": {"rsa": {"layers": ["block9"]}}}),
         ConfigError, ("similarity.rsa.layers", "'block9'", "taskonomy.layers", "encoder_output")),
    Case("Mini-Taskonomy layer its encoders lack", _validate(_mini(["block3", "block4"])), ConfigError,
         ("similarity.rsa.layers", "'block4'", "minitaskonomy", "block3")),
    Case("CKA layer a user model lacks",
         _validate(_user(["fc"], methods=["rsa", "cka_linear"], rsa={"layers": ["fc"]})),
         ConfigError, ("similarity.cka.layers", "'encoder_output'", "mine", "models[0].layers")),
    Case("configuration file missing", lambda tmp: (lambda: load_config(tmp / "nope.yaml")), ConfigError,
         ("configuration file not found", "{tmp}/nope.yaml")),
    Case("configuration file not YAML", _config_file("tasks: [normal\n"), ConfigError,
         ("{tmp}/c.yaml", "not valid YAML")),
    Case("configuration file not a mapping", _config_file(yaml.safe_dump(["normal"])), ConfigError,
         ("{tmp}/c.yaml", "must hold a mapping", "list")),
    # precision
    Case("unknown precision", _precision("fp8", "cpu"), ValueError, ("fp8", "fp32, bf16, int8")),
    Case("int8 on a GPU", _precision("int8", "cuda"), ValueError, ("int8", "cuda", "bf16")),
    # model zoo
    Case("builder module missing", _import("no_such_module:f"), ImportError, ("no_such_module",)),
    Case("builder function missing", _import("toy_models:nope"), ImportError, ("toy_models", "nope")),
    Case("YAML string for a float builder argument", _build("scaled_net", {"scale": "1.0e6"}), TypeError,
         ("name=mine", "scale='1.0e6'", "float", "1.0e+6")),
    Case("string for an int builder argument", _build("count_net", {"depth": "3"}), TypeError,
         ("name=mine", "depth='3'", "int")),
    Case("unknown builder argument", _build("scaled_net", {"scael": 2}), TypeError,
         ("name=mine", "scael", "scale, width")),
    Case("builder raises inside user code", _build("failing_net", {}), TypeError,
         ("name=mine", "toy_models:failing_net failed", "ZeroDivisionError")),
    Case("missing weights file", _load_weights(None), ValueError, ("{tmp}/w.pth",)),
    Case("missing weights source", lambda tmp: _missing_weights_source(tmp), FileNotFoundError,
         ("nope_encoder.pth",)),
    Case("corrupt weights file", _load_weights(b"not a checkpoint"), ValueError,
         ("cannot read checkpoint", "{tmp}/w.pth")),
    Case("weights of another shape", _misfit_weights, ValueError, ("{tmp}/w.pth", "do not fit model 'mine'")),
    Case("bad manifest line", _manifest("normal.pth\n"), ValueError, ("SHA256SUMS:1", "normal.pth")),
    Case("manifest hash disagrees with the name",
         _manifest(f"{'0' * 64}  normal_encoder-{'1' * 64}.pth\n"), ValueError, ("SHA256SUMS:1", "disagrees")),
    Case("configured manifest missing", _missing_manifest, FileNotFoundError,
         ("taskonomy.weights_manifest", "{tmp}/nope")),
    Case("task without listed weights", _unlisted_task, KeyError, ("normal", "depth_zbuffer")),
    # probe sets
    Case("missing probe folder", _probe_folder, FileNotFoundError, ("probe folder not found", "{tmp}/nope")),
    Case("corrupt probe image", _corrupt_image, ProbeImageError, ("broken.png",)),
    Case("fewer probe images than asked", _too_few_images, ValueError,
         ("{tmp}/imgs", "holds 9 images", "asks for 12", "probe.allow_fewer")),
    Case("malformed probe URL list", _bad_url_list, ValueError, ("{tmp}/urls.txt", "entry 2", "not-a-hash")),
    Case("checksum of a local weights file", _local_checksum, ChecksumError,
         ("w.pth", "0" * 64, "{tmp}/w.pth was left as it is", "was not written")),
    Case("a word where the schema wants a number", _string_where_number, ConfigError,
         ("probe.n_images", "a hundred")),
    # extraction and stored activations
    Case("float16 overflow of a layer", _extract({"scale": 1.0e7}), NonFiniteError,
         ("model mine layer", "magnitude", "float16", "extraction.storage_dtype: float32")),
    Case("probe resolution the model does not take", _extract({}, resolution=32), ValueError,
         ("mine", "32px", "16px", "{tmp}/probe.h5")),
    Case("unknown compression", _extract({}, compression="zstd"), ValueError, ("zstd", "lzf")),
    Case("activation file lacks a layer", _read_missing_layer, KeyError, ("{tmp}/a.h5", "block9", "block1")),
    Case("missing HDF5 file", _open_missing, OSError, ("{tmp}/missing.h5",)),
    Case("corrupt HDF5 file", _open_corrupt, OSError, ("{tmp}/corrupt.h5",)),
    # similarity
    Case("NaN in a similarity matrix", _write_matrix(_NAN, ["a", "b", "c"]), NonFiniteError,
         ("{tmp}/m.h5", "(b, c)=nan", "(c, b)=nan")),
    Case("matrix of the wrong shape", _write_matrix(np.eye(2), ["a", "b", "c"]), ValueError,
         ("(2, 2)", "3 models", "{tmp}/m.h5")),
    Case("constant layer under RSA", _rdm_constant, ValueError, ("model flatnet", "layer block2", "{tmp}/flat.h5")),
    Case("RSA layer missing from an activation file", _rdm_missing_layer, KeyError, ("{tmp}/a.h5", "block9")),
    Case("constant layer under linear CKA", _cka_constant("cka_linear"), ValueError,
         ("cka_linear on layer enc", "flatnet")),
    Case("constant layer under RBF CKA", _cka_constant("cka_rbf"), ValueError, ("cka_rbf on layer enc", "flatnet")),
    Case("activation files of two probe sets", _other_probe, ValueError, ("{tmp}/b.h5", "probe set", "cdcdcdcd")),
    Case("unknown similarity method", _unknown_method, KeyError, ("cka_quadratic", "cka_linear")),
    # concurrent runs
    Case("data directory held by another run", _locked, RuntimeError,
         ("in use by another tasksim run", "pid=4242", "host=othernode", "cwd=/home/someone/run", "since=2026")),
]


def test_catalogue_is_large_and_names_are_unique():
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_naming_the_culprit(case, tmp_path):
    action = case.setup(tmp_path)
    try:
        with pytest.raises(case.exc) as info:
            action()
    finally:
        while _KEEP:
            _KEEP.pop().close()
    msg = str(info.value)
    for frag in case.fragments:
        frag = frag.format(tmp=tmp_path)
        assert frag in msg, f"{case.name}: {frag!r} not in {msg!r}"
