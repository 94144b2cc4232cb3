"""The method registry: registration, plugins, feature sources, every built-in method."""

from __future__ import annotations

import sys
import types

import h5py
import numpy as np
import pytest

from tasksim.similarity import registry
from tasksim.similarity.cka import cka, gram_linear
from tasksim.similarity.rsa import iter_column_blocks, rdm, rsa_matrix

BUILTIN = ("rsa", "cka_linear", "cka_rbf", "svcca", "pwcca")


@pytest.fixture
def feats() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((80, 6))
    return [(z @ rng.standard_normal((6, 4 * 3 * 3)) + rng.standard_normal((80, 36))).reshape(80, 4, 3, 3)
            .astype(np.float32) for _ in range(3)]


def test_builtins_registered() -> None:
    assert set(BUILTIN) <= set(registry.available_methods())
    assert registry.get_method("rsa").kind == "features"
    with pytest.raises(KeyError, match="unknown similarity method"):
        registry.get_method("no_such_method")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_method_self_similarity_and_symmetry(name: str, feats: list[np.ndarray]) -> None:
    m, info = registry.compute_similarity(name, feats + [feats[0]])
    assert m.shape == (4, 4)
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 1.0)
    assert m[0, 3] == pytest.approx(1.0, abs=1e-6)  # identical features in two models
    assert m[0, 1] < 0.999
    assert info["n_models"] == 4


def test_rsa_method_matches_building_blocks_and_streams(feats: list[np.ndarray]) -> None:
    m, info = registry.compute_similarity("rsa", feats, keep_rdms=True, names=["a", "b", "c"])
    np.testing.assert_allclose(m, rsa_matrix([rdm(f) for f in feats]), atol=1e-12)
    assert info["names"] == ["a", "b", "c"] and info["rdms"].shape == (3, 80, 80)
    streams = [iter_column_blocks(f.astype(np.float16), 5) for f in feats]
    m16, _ = registry.compute_similarity("rsa", streams)
    np.testing.assert_allclose(m16, m, atol=5e-3)
    lazy = [lambda f=f: f for f in feats]
    np.testing.assert_allclose(registry.compute_similarity("rsa", lazy)[0], m, atol=1e-12)


def test_cka_linear_method_matches_pairwise(feats: list[np.ndarray]) -> None:
    m, info = registry.compute_similarity("cka_linear", feats, debiased=True)
    ref = cka(gram_linear(feats[0].astype(np.float64)), gram_linear(feats[2].astype(np.float64)), True)
    assert m[0, 2] == pytest.approx(ref, abs=1e-5)
    assert info["debiased"] is True


def test_svcca_method_records_conv_mode(feats: list[np.ndarray]) -> None:
    _, info = registry.compute_similarity("svcca", feats, conv_mode="spatial_points")
    assert info["conv_mode"] == "spatial_points" and info["models"][0]["n_points"] == 80 * 9
    _, info = registry.compute_similarity("svcca", feats)  # the default is the pipeline's
    assert info["conv_mode"] == "spatial_mean"
    assert [m["n_points"] for m in info["models"]] == [80, 80, 80]
    with pytest.raises(TypeError, match="whole arrays"):
        registry.compute_similarity("svcca", [iter_column_blocks(f, 4) for f in feats])


def test_hdf5_layer_source(tmp_path, feats: list[np.ndarray]) -> None:
    paths = []
    for i, f in enumerate(feats):
        p = tmp_path / f"m{i}.h5"
        with h5py.File(p, "w") as h:
            h.create_dataset("layers/layer1", data=f.astype(np.float16), chunks=(1, *f.shape[1:]))
        paths.append(p)
    m, _ = registry.compute_similarity("rsa", [registry.hdf5_layer(p, "layer1") for p in paths])
    ref, _ = registry.compute_similarity("rsa", [f.astype(np.float16) for f in feats])
    np.testing.assert_array_equal(m, ref)


def test_register_decorator_and_duplicates() -> None:
    @registry.register("test_dummy_method", replace=True)
    def dummy(features, scale: float = 1.0):
        """Dummy method for the test."""
        n = len(features)
        return np.eye(n) * scale, {"method": "test_dummy_method"}

    try:
        m, info = registry.compute_similarity("test_dummy_method", [0, 1], scale=1.0)
        assert np.array_equal(m, np.eye(2)) and info["method"] == "test_dummy_method"
        assert registry.get_method("test_dummy_method").description == "Dummy method for the test."
        with pytest.raises(ValueError, match="already registered"):
            registry.register("test_dummy_method")(lambda features: (np.eye(1), {}))
    finally:
        registry.REGISTRY.pop("test_dummy_method", None)


def test_plugin_module_registers_on_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """An attribution module registers its methods with one decorator; lookup imports it."""
    mod = types.ModuleType("fake_attribution_plugin")
    code = (
        "import numpy as np\n"
        "from tasksim.similarity.registry import register\n"
        "@register('attribution_saliency', reads='attribution_maps', section='attribution', "
        "bootstrap='per_image', layers=('input',), replace=True)\n"
        "def saliency(features, **options):\n"
        "    return np.eye(len(features)), {'method': 'attribution_saliency'}\n"
    )
    monkeypatch.setattr(registry, "PLUGIN_MODULES", ("fake_attribution_plugin",))

    import importlib.abc
    import importlib.util

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):
            return importlib.util.spec_from_loader(fullname, self) if fullname == mod.__name__ else None

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            exec(code, module.__dict__)

    finder = Finder()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    saved = registry.REGISTRY.pop("attribution_saliency", None)  # the real plugin's, if loaded
    try:
        spec = registry.get_method("attribution_saliency")
        assert spec.kind == "attribution"
        assert "attribution_saliency" in registry.available_methods(kind="attribution")
        assert "rsa" not in registry.available_methods(kind="attribution")
    finally:
        registry.REGISTRY.pop("attribution_saliency", None)
        if saved is not None:
            registry.REGISTRY["attribution_saliency"] = saved
        sys.modules.pop("fake_attribution_plugin", None)


def test_missing_plugin_module_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PLUGIN_MODULES", ("tasksim_no_such_plugin_module",))
    assert "rsa" in registry.available_methods()


def test_real_attribution_plugin_registers_the_three_kinds():
    """tasksim.similarity.attribution registers attribution_<kind>; the method is the mean per-image cosine."""
    rng = np.random.default_rng(3)
    maps = [rng.normal(size=(5, 4, 4)) for _ in range(3)]
    names = registry.available_methods(kind="attribution")
    assert {"attribution_saliency", "attribution_gradxinput", "attribution_elrp"} <= set(names)
    m, info = registry.compute_similarity("attribution_elrp", maps, names=["a", "b", "c"])
    direct = np.array([[np.mean([np.dot(x[i].ravel(), y[i].ravel())
                                 / np.linalg.norm(x[i]) / np.linalg.norm(y[i]) for i in range(5)])
                        for y in maps] for x in maps])
    np.testing.assert_allclose(m, direct, atol=1e-12)
    assert info["per_image"].shape == (3, 3, 5) and info["names"] == ["a", "b", "c"]
