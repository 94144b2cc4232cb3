"""The method table: one declaration per similarity method, read by the schema, the config
resolver, the rules and the bootstrap; schema defaults equal the functions' defaults."""

import numpy as np
import pandas as pd
import pytest

from tasksim import config as cfgmod
from tasksim.similarity import registry
from tasksim.taxonomy import SimilarityFile, bootstrap_source


def _schema_sections():
    return cfgmod.load_schema()["properties"]["similarity"]["properties"]


@pytest.mark.parametrize("name", registry.available_methods())
def test_schema_defaults_equal_function_defaults(name):
    spec = registry.get_method(name)
    section = _schema_sections()[spec.section]["properties"]
    opts = spec.options()
    shared = [k for k in section if k in opts]
    for key in shared:
        assert section[key]["default"] == opts[key], (name, key)
    # what the resolver hands the function is exactly those keys, with the config's values
    cfg = cfgmod.validate_config({}, references=False)
    assert cfgmod.method_options(cfg, name) == {k: section[k]["default"] for k in shared}


def test_every_section_key_is_an_option_layers_or_an_upstream_setting():
    sections = _schema_sections()
    upstream = {"attribution": {"epsilon", "batch_size", "storage_dtype", "threads"},
                "rsa": {"normalization", "distance", "block_size"}}  # the per-model RDM step
    for section in {registry.get_method(m).section for m in registry.available_methods()}:
        used = set().union(*(registry.get_method(m).options() for m in registry.available_methods()
                             if registry.get_method(m).section == section))
        keys = set(sections[section]["properties"]) - {"layers"} - upstream.get(section, set())
        assert keys <= used, (section, keys - used)


def test_schema_accepts_exactly_the_registered_methods():
    enum = _schema_sections()["methods"]["items"]["enum"]
    assert enum == registry.available_methods()
    with pytest.raises(cfgmod.ConfigError, match="similarity.methods"):
        cfgmod.validate_config({"similarity": {"methods": ["rsa", "cka_quadratic"]}}, references=False)


def test_svcca_dimension_cap_is_a_config_option():
    cfg = cfgmod.validate_config({"similarity": {"cca": {"max_dim_ratio": 0.5, "keep": 3}}},
                                 references=False)
    assert cfgmod.method_options(cfg, "svcca") == {"keep": 3, "max_dim_ratio": 0.5,
                                                   "conv_mode": "spatial_mean"}
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((40, 30)) for _ in range(2)]
    _, capped = registry.compute_similarity("svcca", feats, keep=0.999, max_dim_ratio=0.1)
    _, free = registry.compute_similarity("svcca", feats, keep=0.999, max_dim_ratio=0.5)
    assert [m["kept_dims"] for m in capped["models"]] == [4, 4]
    assert all(m["kept_dims"] > 4 for m in free["models"])
    with pytest.raises(cfgmod.ConfigError, match="similarity.cca.keep"):
        cfgmod.resolve({"similarity": {"cca": {"keep": 2.5}}})


def test_layers_come_from_the_table():
    cfg = cfgmod.validate_config({"similarity": {"rsa": {"layers": ["block2"]}}}, references=False)
    assert cfgmod.method_layers(cfg, "rsa") == ["block2"]
    assert cfgmod.method_layers(cfg, "attribution_elrp") == ["input"]
    assert ("attribution_elrp", "input") in cfgmod.analyses(cfg)


def test_resolve_derives_minitaskonomy_models_and_ground_truth_without_touching_the_input():
    raw = {"minitaskonomy": {"enabled": True, "tasks": ["normal", "depth_zbuffer"], "resolution": 64},
           "preprocessing": {"resolution": 64}, "tasks": ["normal"],
           "similarity": {"rsa": {"layers": ["block3"]}, "methods": ["rsa"]}}
    before = repr(raw)
    cfg = cfgmod.resolve(raw)
    assert repr(raw) == before
    assert cfg["tasks"] == [] and [m["name"] for m in cfg["models"]] == ["normal", "depth_zbuffer"]
    assert cfg["taxonomy"]["groundtruth"] == "minitaskonomy"
    assert cfg["taxonomy"]["groundtruth_csv"].endswith("minitaskonomy/affinity.csv")
    with pytest.raises(cfgmod.ConfigError, match="preprocessing.resolution"):
        cfgmod.resolve({**raw, "preprocessing": {"resolution": 32}})
    with pytest.raises(cfgmod.ConfigError, match="similarity.rsa.layers"):
        cfgmod.resolve({**raw, "similarity": {"methods": ["rsa"], "rsa": {"layers": ["block4"]}}})


def test_standin_sources_are_derived():
    cfg = cfgmod.resolve({"standin": {"enabled": True}, "data_dir": "d", "tasks": ["normal"],
                          "similarity": {"methods": ["rsa"], "rsa": {"layers": ["encoder_output"]}}})
    assert cfg["taskonomy"]["weights_source"] == "d/standin/"
    assert cfg["taskonomy"]["weights_manifest"] == "d/standin/SHA256SUMS"


def test_rsa_bootstrap_uses_the_analysis_comparison(tmp_path):
    import h5py

    rng = np.random.default_rng(1)
    n, models = 12, ["a", "b", "c"]
    feats = [rng.standard_normal((n, 20)) for _ in models]
    files = {}
    for m, f in zip(models, feats, strict=True):
        r, _ = registry.rsa_rdm(f)
        files[m] = str(tmp_path / f"{m}.h5")
        with h5py.File(files[m], "w") as h:
            h["rdms/l"] = r
    for comparison in ("spearman", "pearson"):
        point, _ = registry.compute_similarity("rsa", feats, comparison=comparison)
        sim = SimilarityFile(pd.DataFrame(point, index=models, columns=models), {}, None)
        fn, kind, reason = bootstrap_source("rsa", models, sim, files, None, "l", {"comparison": comparison})
        assert kind == "rdms" and reason == ""
        # all images once: the bootstrap's matrix is the point estimate of the same comparison
        np.testing.assert_allclose(fn(np.arange(n)).to_numpy(), point, atol=1e-5)


def test_cka_gram_bootstrap_equals_recomputation(tmp_path):
    import h5py

    rng = np.random.default_rng(2)
    n, models = 15, ["a", "b", "c"]
    feats = [rng.standard_normal((n, 6)) for _ in models]
    files = {}
    for m, f in zip(models, feats, strict=True):
        files[m] = str(tmp_path / f"{m}.h5")
        with h5py.File(files[m], "w") as h:
            h["layers/l"] = f
    idx = rng.integers(0, n, n)
    for method, opts in (("cka_linear", {"debiased": False}), ("cka_rbf", {"rbf_threshold": 0.8})):
        fn, kind, _ = bootstrap_source(method, models, None, None, files, "l", opts)
        assert kind == "grams"
        direct, _ = registry.compute_similarity(method, [f[idx] for f in feats], **opts)
        np.testing.assert_allclose(fn(idx).to_numpy(), direct, atol=1e-8)
