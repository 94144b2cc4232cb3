"""Model zoo: official list, manifests, stand-ins in the official format, loading, user models."""
import hashlib

import pytest
import torch
from torch import nn

from tasksim.config import validate_config
from tasksim.download import fetch
from tasksim.zoo import (
    load_model,
    model_specs,
    official_weight_files,
    read_manifest,
    read_state_dict,
    record_layers,
    sha_from_filename,
    user_spec,
)


def test_official_list_has_all_25_encoders_with_hashes():
    files = official_weight_files()
    assert len(files) == 25
    assert files["depth_zbuffer"].startswith("depth_zbuffer_encoder-")
    cfg = validate_config({"tasks": ["rgb2depth"]})
    spec = model_specs(cfg)["depth_zbuffer"]
    assert spec.weights == ("https://github.com/alexsax/visual-prior/raw/networks/assets/pytorch/"
                            + files["depth_zbuffer"])
    assert spec.sha256 == sha_from_filename(files["depth_zbuffer"]) and len(spec.sha256) == 64


def test_standin_files_are_in_the_official_format(standin_zoo):
    manifest = read_manifest(standin_zoo / "SHA256SUMS")
    assert set(manifest) == {"normal", "depth_zbuffer", "edge_texture"}
    for task, name in manifest.items():
        path = standin_zoo / name
        assert name == f"{task}_encoder-{hashlib.sha256(path.read_bytes()).hexdigest()}.pth"
        ckpt = torch.load(path, weights_only=True)
        assert set(ckpt) == {"state_dict"}
        from visualpriors.taskonomy_network import TaskonomyEncoder

        TaskonomyEncoder().load_state_dict(ckpt["state_dict"])  # strict: same keys and shapes


def test_standins_are_seeded_and_grouped(standin_zoo, tmp_path):
    from tasksim.zoo import write_standin_zoo

    again = write_standin_zoo(["normal", "depth_zbuffer", "edge_texture"], tmp_path, seed=0,
                              groups={"g": ["normal", "depth_zbuffer"]}, perturbation=0.05)
    assert read_manifest(again) == read_manifest(standin_zoo / "SHA256SUMS")
    m = read_manifest(again)
    sd = {t: read_state_dict(tmp_path / f) for t, f in m.items()}
    w = "layer2.0.conv1.weight"

    def rel(a, b):
        return float((sd[a][w] - sd[b][w]).norm() / sd[a][w].norm())

    assert rel("normal", "depth_zbuffer") < 0.2 < rel("normal", "edge_texture")


def test_download_verify_load_path_with_mirror(standin_zoo, tmp_path):
    cfg = validate_config({"tasks": ["normal"], "taskonomy": {
        "weights_source": standin_zoo.as_uri() + "/", "weights_manifest": str(standin_zoo / "SHA256SUMS")}})
    spec = model_specs(cfg)["normal"]
    dest = fetch(spec.weights, tmp_path / "normal.pth", spec.sha256)
    model = load_model(spec, dest)
    with record_layers(model, spec.layers) as out, torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    assert set(out) == {"block1", "block2", "block3", "block4", "encoder_output"}
    assert tuple(out["encoder_output"].shape) == (1, 8, 4, 4)


def tiny_builder(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 2, 1))


def test_user_model_needs_no_code_change(tmp_path):
    torch.manual_seed(0)
    net = tiny_builder(5)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    cfg = validate_config({"tasks": [], "models": [{
        "name": "mine", "builder": "test_zoo:tiny_builder", "builder_kwargs": {"width": 5},
        "weights": str(path), "sha256": sha, "layers": ["0", "output"]}],
        "similarity": {"methods": ["rsa"], "rsa": {"layers": ["0", "output"]}}})
    spec = model_specs(cfg)["mine"]
    model = load_model(spec, path)
    x = torch.rand(2, 3, 8, 8)
    with record_layers(model, spec.layers) as out, torch.no_grad():
        y = model(x)
    torch.testing.assert_close(out["output"], y)
    assert tuple(out["0"].shape) == (2, 5, 8, 8)


def test_weights_that_do_not_fit_fail_naming_the_file(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": tiny_builder(3).state_dict()}, path)
    spec = user_spec({"name": "m", "builder": "test_zoo:tiny_builder", "weights": str(path),
                      "layers": ["output"], "builder_kwargs": {"width": 4}})
    with pytest.raises(ValueError, match="bad.pth"):
        load_model(spec, path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pth"):
        read_state_dict(path)


def test_unknown_builder_is_a_clear_error():
    from tasksim.zoo import import_builder

    with pytest.raises(ImportError, match="no_such_module"):
        import_builder("no_such_module:f")


def _toy_spec(tmp_path, builder, kwargs):
    from toy_models import save_weights

    from tasksim.zoo import user_spec

    weights = save_weights(tmp_path / "toy.pth")
    return user_spec({"name": "mine", "builder": f"toy_models:{builder}", "weights": str(weights),
                      "layers": ["output"], "builder_kwargs": kwargs})


@pytest.mark.parametrize(("builder", "kwargs", "fragments"), [
    ("scaled_net", {"scale": "1.0e6"}, ["'mine'", "scale='1.0e6'", "is a str", "float", "1.0e+6"]),
    ("count_net", {"depth": "2"}, ["'mine'", "depth='2'", "int"]),
    ("scaled_net", {"scael": 2.0}, ["'mine'", "['scael']", "scale, width"]),
    ("failing_net", {}, ["'mine'", "toy_models:failing_net failed", "ZeroDivisionError",
                         "division by zero in the user's module"]),
])
def test_builder_argument_errors_name_the_model_entry(tmp_path, builder, kwargs, fragments):
    from tasksim.zoo import BuilderError, build_model

    spec = _toy_spec(tmp_path, builder, kwargs)
    with pytest.raises(BuilderError) as info:
        build_model(spec)
    msg = str(info.value)
    assert "config key models, entry name=mine" in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_numeric_builder_arguments_pass_the_check(tmp_path):
    from tasksim.zoo import build_model

    assert build_model(_toy_spec(tmp_path, "scaled_net", {"scale": 1.0e6, "width": 3})).scale == 1.0e6
    assert build_model(_toy_spec(tmp_path, "count_net", {"depth": 2})).conv.out_channels == 8
