"""Configuration: schema defaults and descriptions, errors naming keys, task-name mapping."""
import pytest
import yaml

from tasksim.config import ConfigError, load_config, load_schema, validate_config
from tasksim.tasks import PAPER_TASKS, TASKS, canonical, canonical_list

from conftest import REPO, SHARED


def _walk(schema, path="config"):
    if schema.get("type") == "object" or "properties" in schema:
        for key, sub in schema.get("properties", {}).items():
            yield f"{path}.{key}", sub
            yield from _walk(sub, f"{path}.{key}")
    items = schema.get("items")
    if isinstance(items, dict) and "properties" in items:
        yield from _walk(items, f"{path}[]")


def test_schema_is_draft_2020_12_and_every_key_has_description_and_default():
    schema = load_schema()
    assert schema["$schema"].endswith("draft/2020-12/schema")
    for where, sub in _walk(schema):
        assert sub.get("description"), f"{where} has no description"
        in_required_item = "[]" in where and where.rsplit(".", 1)[-1] in {"name", "builder", "weights", "layers"}
        assert "default" in sub or in_required_item, f"{where} has no default"


def test_defaults_are_the_paper_settings():
    cfg = validate_config({})
    assert cfg["tasks"] == list(PAPER_TASKS)
    assert cfg["probe"]["n_images"] == 500 and cfg["preprocessing"]["resolution"] == 256
    assert cfg["similarity"]["rsa"]["normalization"] == "center"
    assert cfg["similarity"]["rsa"]["distance"] == "pearson"
    assert cfg["similarity"]["rsa"]["comparison"] == "spearman"
    assert cfg["similarity"]["attribution"]["epsilon"] == 1e-4


def test_real_config_is_the_20_task_reproduction():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert cfg["tasks"] == list(PAPER_TASKS) and len(cfg["tasks"]) == 20
    assert cfg["probe"]["source"] == "urls" and cfg["probe"]["n_images"] == 500
    assert not cfg["standin"]["enabled"]


def test_unknown_task_fails_with_the_list_of_valid_names():
    with pytest.raises(ConfigError) as err:
        validate_config({"tasks": ["normal", "rgb2depthh"]})
    msg = str(err.value)
    assert "rgb2depthh" in msg and "depth_zbuffer" in msg and "segment_unsup25d" in msg


def test_old_and_new_names_map_to_one_canonical_spelling():
    cfg = validate_config({"tasks": ["rgb2depth", "rgb2sfnorm", "segmentsemantic", "edge_texture"]})
    assert cfg["tasks"] == ["depth_zbuffer", "normal", "segment_semantic", "edge_texture"]
    with pytest.raises(ConfigError, match="twice"):
        validate_config({"tasks": ["rgb2depth", "depth_zbuffer"]})


def test_wrong_type_names_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"extraction": {"batch_size": "many"}}))
    with pytest.raises(ConfigError, match=r"(?s)c.yaml.*extraction.batch_size"):
        load_config(p)
    p.write_text(yaml.safe_dump({"similarity": {"methods": ["rsa", "magic"]}}))
    with pytest.raises(ConfigError, match="similarity.methods"):
        load_config(p)
    p.write_text(yaml.safe_dump({"extraction": {"precision": "fp16"}}))
    with pytest.raises(ConfigError, match=r"(?s)extraction.precision.*fp16"):
        load_config(p)
    p.write_text(yaml.safe_dump({"extraction": {"precision": "int8", "calibration_images": 0}}))
    with pytest.raises(ConfigError, match="extraction.calibration_images"):
        load_config(p)
    p.write_text("tasks: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_mapping_round_trips_for_every_spelling():
    for t in TASKS.values():
        for spelling in (t.name, t.taskbank_name, t.pickle_name, t.name.upper()):
            assert canonical(spelling) == t.name


@pytest.mark.shared
def test_mapping_agrees_with_shared_task_names_csv():
    import csv

    path = SHARED / "taskonomy" / "task_names.csv"
    if not path.exists():
        pytest.skip(f"{path} not found (../shared beside the checkout)")
    rows = [r for r in csv.DictReader(path.open()) if r["visualpriors_new_name"]]
    assert len(rows) == 25
    for r in rows:
        t = TASKS[r["visualpriors_new_name"]]
        assert t.taskbank_name == r["taskbank_name"]
        assert t.pickle_name == r["affinity_pickle_name"]
        # the class count of Taskonomy's object labels, "(1000)", is the data set's, not the task's:
        # Mini-Taskonomy's object task has other classes, so the label leaves it out
        assert t.display_name == r["display_name"].removesuffix(" (1000)")
        assert (t.group or "") == r["rsa_attr_task_group"]
        assert (t.name in PAPER_TASKS) == (r["in_20_task_rsa_attr_list"] == "True")
        if r["index_in_20_task_list"]:
            assert PAPER_TASKS[int(r["index_in_20_task_list"])] == t.name


def test_config_readme_lists_every_schema_key():
    from tasksim.config import schema_markdown

    readme = (REPO / "config" / "README.md").read_text()
    assert schema_markdown() in readme, \
        "config/README.md is stale: regenerate the table with python -m tasksim.config --markdown"


def test_numbers_written_as_strings_are_taken_as_meant():
    # snakemake --config probe='{"n_images": 100}' hands the nested value over as the string '100'
    cfg = validate_config({"probe": {"n_images": "100", "allow_fewer": "true"},
                           "similarity": {"cca": {"keep": "0.95", "max_dim_ratio": "0.2"}},
                           "taxonomy": {"confidence": "9.5e-1"}})
    assert cfg["probe"]["n_images"] == 100 and cfg["probe"]["allow_fewer"] is True
    assert cfg["similarity"]["cca"]["keep"] == 0.95 and cfg["similarity"]["cca"]["max_dim_ratio"] == 0.2
    assert cfg["taxonomy"]["confidence"] == 0.95
    # strings stay strings where the schema wants a string, and a non-number still fails, naming the key
    assert validate_config({"probe": {"name": "123"}})["probe"]["name"] == "123"
    with pytest.raises(ConfigError, match=r"probe.n_images: 'many' is not of type 'integer'"):
        validate_config({"probe": {"n_images": "many"}})


def test_unknown_rsa_layer_fails_naming_key_value_and_valid_layers():
    with pytest.raises(ConfigError) as info:
        validate_config({"tasks": ["normal"], "similarity": {"rsa": {"layers": ["block9"]}}})
    msg = str(info.value)
    for frag in ("similarity.rsa.layers", "'block9'", "normal", "taskonomy.layers",
                 "['block1', 'block2', 'block3', 'block4', 'encoder_output']"):
        assert frag in msg, (frag, msg)


def test_layer_not_recorded_by_the_taskonomy_layers_fails():
    with pytest.raises(ConfigError, match=r"similarity\.cca\.layers \(method svcca\): layer 'encoder_output'"):
        validate_config({"tasks": ["normal"], "taskonomy": {"layers": ["block4"]},
                         "similarity": {"methods": ["svcca"], "rsa": {"layers": ["block4"]}}})
    # a method that is not run does not need its layers; the estimators (on by default, with the
    # sample building's labels) read theirs from transferability.layers
    with pytest.raises(ConfigError, match=r"transferability\.layers: layer 'encoder_output'"):
        validate_config({"tasks": ["normal"], "taskonomy": {"layers": ["block4"]},
                         "similarity": {"methods": ["rsa"], "rsa": {"layers": ["block4"]}}})
    validate_config({"tasks": ["normal"], "taskonomy": {"layers": ["block4"]},
                     "similarity": {"methods": ["rsa"], "rsa": {"layers": ["block4"]}},
                     "transferability": {"layers": ["block4"]}})


def test_minitaskonomy_layers_are_those_of_its_encoders():
    demo = yaml.safe_load((REPO / "config" / "demo-ci.yaml").read_text())
    validate_config(demo)
    demo["similarity"]["rsa"]["layers"] = ["block3", "block4"]
    with pytest.raises(ConfigError) as info:
        validate_config(demo)
    msg = str(info.value)
    assert "'block4'" in msg and "minitaskonomy" in msg and "encoder_output" in msg, msg


def test_user_model_layers_must_cover_the_analysed_layers():
    entry = {"name": "mine", "builder": "m:f", "weights": "w.pth", "layers": ["fc", "output"]}
    cfg = {"tasks": [], "models": [entry], "similarity": {"methods": ["rsa", "cka_linear"],
                                                          "rsa": {"layers": ["fc"]}}}
    with pytest.raises(ConfigError, match=r"similarity\.cka\.layers.*'encoder_output'.*mine.*models\[0\]\.layers"):
        validate_config(cfg)
    cfg["similarity"]["cka"] = {"layers": ["output"]}
    validate_config(cfg)
    # a rule validating only its part of the configuration does not check references
    validate_config({"tasks": [], "models": [entry]}, references=False)


def test_unknown_layer_fails_the_dry_run_naming_the_key(tmp_path):
    import subprocess

    from conftest import snakemake_exe

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"tasks": ["normal", "depth_zbuffer"],
                                   "similarity": {"methods": ["rsa"], "rsa": {"layers": ["block9"]}}}))
    proc = subprocess.run([snakemake_exe(), "-s", str(REPO / "Snakefile"), "-n", "--configfile", str(cfg),
                           "-d", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "similarity.rsa.layers" in out and "block9" in out, out[-3000:]


def _reversed_keys(value):
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["demo-ci.yaml", "config.yaml"])
def test_key_order_of_a_config_file_changes_nothing_resolved(name):
    """Rules' params are compared by their text: the resolved config must not depend on the
    order in which a config file writes its keys (lists keep their order)."""
    import json

    from tasksim.config import resolve

    cfg = yaml.safe_load((REPO / "config" / name).read_text())
    flipped = _reversed_keys(cfg)
    assert json.dumps(flipped) != json.dumps(cfg)
    assert json.dumps(resolve(flipped)) == json.dumps(resolve(cfg))
    # every mapping of the result is in sorted key order, lists in their own
    out = resolve(cfg)
    assert list(out) == sorted(out) and list(out["probe"]) == sorted(out["probe"])
    assert out["tasks"] == resolve(cfg)["tasks"]


def test_target_labels_follow_the_probe_source_unless_set():
    from tasksim.config import resolve, target_tasks, transferability_active, transferability_scored

    real = resolve(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    assert real["targets"]["source"] == "taskonomy"
    # every single-image task of the real configuration has its label in the sample building
    assert target_tasks(real) == canonical_list(real["tasks"]) and transferability_scored(real)
    demo = resolve(yaml.safe_load((REPO / "config" / "demo-ci.yaml").read_text()))
    assert demo["targets"]["source"] == "minitaskonomy"
    assert target_tasks(demo) == demo["minitaskonomy"]["tasks"]
    folder = resolve({"tasks": ["normal", "egomotion"], "probe": {"source": "folder", "folder": {"path": "imgs"}}})
    assert folder["targets"]["source"] == "none" and not transferability_active(folder)
    multi = resolve({"tasks": ["normal", "egomotion"]})
    assert target_tasks(multi) == ["normal"]  # a multi-image task has no single-image label
    user = resolve({"tasks": ["normal"], "probe": {"source": "folder", "folder": {"path": "imgs"}},
                    "targets": {"source": "user", "user": {"task": "mine", "class_csv": "c.csv"}}})
    assert target_tasks(user) == ["mine"] and transferability_active(user)
    assert not transferability_scored(user)  # a user's task has no transfer ground truth


@pytest.mark.parametrize("cfg, match", [
    ({"targets": {"source": "minitaskonomy"}}, r"targets\.source = minitaskonomy needs minitaskonomy\.enabled"),
    ({"probe": {"source": "generated"}, "targets": {"source": "taskonomy"}},
     r"targets\.source = taskonomy needs probe\.source: urls.*'generated'"),
    ({"targets": {"source": "user", "user": {"class_csv": "c.csv"}}},
     r"targets\.source = user needs probe\.source: folder"),
    ({"probe": {"source": "folder"}, "targets": {"source": "user"}},
     r"targets\.user\.class_csv is needed for targets\.user\.kind = class"),
    ({"probe": {"source": "folder"}, "targets": {"source": "user", "user": {"kind": "dense_class",
                                                                            "class_csv": "c.csv"}}},
     r"targets\.user\.map_dir is needed"),
    ({"probe": {"source": "folder"}, "targets": {"source": "user", "user": {"class_csv": "c.csv",
                                                                            "map_dir": "maps"}}},
     r"targets\.user\.map_dir does not apply"),
])
def test_target_source_mismatches_fail_naming_the_keys(cfg, match):
    from tasksim.config import resolve

    with pytest.raises(ConfigError, match=match):
        resolve({"tasks": ["normal"], **cfg})
