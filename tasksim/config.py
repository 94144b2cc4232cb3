"""Configuration: JSON-schema validation with defaults, and task-name canonicalisation.

The schema (``workflow/schemas/config.schema.yaml``, draft 2020-12) gives every key a description
and a default; the names ``similarity.methods`` accepts come from the method table
(:mod:`tasksim.similarity.registry`). :func:`validate_config` fills the defaults, validates, and
maps every task name to its canonical spelling, failing at once with the list of valid names.
:func:`resolve` is what the workflow runs, once, on Snakemake's ``config``: validation, every
cross-key check, and every derived key (stand-in weight sources; with Mini-Taskonomy, its
encoders as the models and its measured affinity as the ground truth). The rule files only read
the resolved configuration; :func:`method_layers`, :func:`method_options` and :func:`analyses`
answer what each method runs on, from the method table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tasksim.tasks import UnknownTaskError, canonical, canonical_list

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the value."""


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the configuration schema; ``similarity.methods`` accepts the registered methods and
    ``transferability.estimators`` the declared estimators."""
    from tasksim.similarity.registry import available_methods
    from tasksim.transferability.estimators import ESTIMATORS

    with open(path) as fh:
        schema = yaml.safe_load(fh)
    methods = schema.get("properties", {}).get("similarity", {}).get("properties", {}).get("methods")
    if methods is not None:
        methods["items"]["enum"] = available_methods()
    estimators = schema.get("properties", {}).get("transferability", {}).get("properties", {}).get("estimators")
    if estimators is not None:
        estimators["items"]["enum"] = list(ESTIMATORS)
    return schema


def _fill_defaults(instance: Any, schema: Mapping[str, Any]) -> Any:
    """Recursively fill defaults of object properties (before validation)."""
    if not isinstance(instance, dict) or schema.get("type") not in ("object", None):
        return instance
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            if isinstance(instance[key], dict):
                _fill_defaults(instance[key], sub)
            elif isinstance(instance[key], list) and isinstance(sub.get("items"), dict):
                for item in instance[key]:
                    _fill_defaults(item, sub["items"])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}) and isinstance(value, dict):
                _fill_defaults(value, extra)
    return instance


_TRUE, _FALSE = {"true", "yes", "on"}, {"false", "no", "off"}


def _coerce_scalar(value: str, types: list[str]) -> Any:
    """A string as the number or boolean the schema asks for, or unchanged if it is not one."""
    text = value.strip()
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if "null" in types and text.lower() in {"null", "none", "~"}:
        return None
    return value


def coerce_strings(instance: Any, schema: Mapping[str, Any]) -> Any:
    """Turn strings into the numbers or booleans the schema declares, recursively, in place.

    ``snakemake --config probe='{"n_images": 100}'`` hands nested values over as strings
    (``'100'``), and YAML 1.1 reads ``1.0e6`` as a string; where the schema wants a number (or a
    boolean, or null) and the string is one, the value meant is used. Anything else is left for
    validation to report.
    """
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if isinstance(instance, str) and "string" not in types and types:
        return _coerce_scalar(instance, types)
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if isinstance(sub, Mapping):
                instance[key] = coerce_strings(value, sub)
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        instance[:] = [coerce_strings(v, schema["items"]) for v in instance]
    return instance


def _where(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "<top level>"


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None,
                    references: bool = True) -> dict[str, Any]:
    """Return a validated copy of ``config`` with defaults filled and task names canonical.

    ``references`` also checks that every layer a similarity method analyses is recorded by
    every analysed model (:func:`check_references`); rule scripts validating the part of the
    configuration they received turn it off. Raises :class:`ConfigError` naming the offending
    key and value.
    """
    plugins = (config.get("similarity") or {}).get("plugins") or []
    if plugins:
        from tasksim.similarity.registry import import_plugins

        import_plugins(list(plugins) if isinstance(plugins, list) else [plugins])
    schema = load_schema() if schema is None else schema
    cfg = _fill_defaults(coerce_strings(copy.deepcopy(dict(config)), schema), schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"config key {_where(e)}: {e.message}" for e in errors[:10]]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    try:
        cfg["tasks"] = canonical_list(cfg["tasks"])
        pre = cfg["preprocessing"]
        pre["low_saturation_tasks"] = canonical_list(pre["low_saturation_tasks"])
        groups = cfg["standin"].get("groups") or {}
        cfg["standin"]["groups"] = {g: canonical_list(ts) for g, ts in groups.items()} or None
    except (UnknownTaskError, ValueError) as err:
        raise ConfigError(f"config key tasks / preprocessing.low_saturation_tasks / standin.groups: {err}") from err
    for group, members in (cfg["standin"]["groups"] or {}).items():
        missing = [t for t in members if t not in cfg["tasks"]]
        if missing:
            raise ConfigError(f"config key standin.groups.{group}: {missing} are not in tasks")
    names = list(cfg["tasks"]) + [m["name"] for m in cfg["models"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"config key models: model names {dup} are used twice "
                          f"(a Taskonomy model is named after its task)")
    if references:
        check_references(cfg)
    return cfg


def _spec(method: str) -> Any:
    from tasksim.similarity.registry import get_method

    return get_method(method)


def method_section(cfg: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The configuration section ``similarity.<section>`` of a method (its table entry says which)."""
    return dict(cfg["similarity"].get(_spec(method).section, {}))


def method_layers(cfg: Mapping[str, Any], method: str) -> list[str]:
    """Layers one similarity method analyses: fixed by its table entry (attribution maps: the
    input) or its section's ``layers``."""
    spec = _spec(method)
    if spec.layers is not None:
        return list(spec.layers)
    return list(method_section(cfg, method).get("layers", []))


def method_options(cfg: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The options the method's function takes, as the configuration sets them (the section's
    keys named like its keywords; the others, such as ``layers``, are not options)."""
    section = method_section(cfg, method)
    return {k: section[k] for k in _spec(method).options() if k in section}


def analyses(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """All (method, layer) pairs of the configuration, in configuration order."""
    return [(m, layer) for m in dict.fromkeys(cfg["similarity"]["methods"])
            for layer in method_layers(cfg, m)]


def recorded_layers(cfg: Mapping[str, Any]) -> dict[str, tuple[list[str], str]]:
    """Analysed model -> (the layers it records, the config key that decides them), for a
    validated configuration. With ``minitaskonomy.enabled`` the models are the Mini-Taskonomy
    encoders (:func:`resolve` sets ``tasks`` and ``models`` to them)."""
    if cfg["minitaskonomy"]["enabled"]:
        from tasksim.minitaskonomy.models import ENCODER_LAYERS

        where = "minitaskonomy.tasks (Mini-Taskonomy encoders)"
        return {t: (list(ENCODER_LAYERS), where) for t in cfg["minitaskonomy"]["tasks"]}
    out = {t: (list(cfg["taskonomy"]["layers"]), "taskonomy.layers") for t in cfg["tasks"]}
    for i, m in enumerate(cfg["models"]):
        out[m["name"]] = (list(m["layers"]), f"models[{i}].layers")
    return out


def target_source(cfg: Mapping[str, Any]) -> str:
    """Where the run's target labels come from (``targets.source``, with ``auto`` resolved):
    ``minitaskonomy`` when Mini-Taskonomy is enabled, ``taskonomy`` (the sample building's label
    folders) for a URL probe set, ``none`` otherwise."""
    source = cfg.get("targets", {}).get("source", "auto")
    if source != "auto":
        return source
    if cfg["minitaskonomy"]["enabled"]:
        return "minitaskonomy"
    return "taskonomy" if cfg["probe"]["source"] == "urls" else "none"


def target_tasks(cfg: Mapping[str, Any]) -> list[str]:
    """The target tasks whose labels the run reads (canonical names): the Mini-Taskonomy tasks,
    the configured Taskonomy tasks that have a single-image label in the sample building, or the
    user's one task (every single-image Taskonomy task has its label in the sample building)."""
    source = target_source(cfg)
    if source == "minitaskonomy":
        return list(cfg["minitaskonomy"]["tasks"])
    if source == "taskonomy":
        from tasksim.tasks import TASKS

        return [t for t in canonical_list(cfg["tasks"]) if TASKS[t].single_image]
    if source == "user":
        return [cfg["targets"]["user"]["task"]]
    return []


def transferability_active(cfg: Mapping[str, Any]) -> bool:
    """Whether the run has label-based estimators to run and target labels for them."""
    return bool(cfg.get("transferability", {}).get("estimators")) and bool(target_tasks(cfg))


def transferability_scored(cfg: Mapping[str, Any]) -> bool:
    """Whether the estimator matrices are scored against the transfer ground truth: yes for the
    zoo's own tasks (Mini-Taskonomy, Taskonomy), no for a user's task (which has none)."""
    return transferability_active(cfg) and target_source(cfg) != "user"


def check_references(cfg: Mapping[str, Any]) -> None:
    """Every layer analysed by a configured similarity method (its section's ``layers``) or by the
    transferability estimators (``transferability.layers``) must be recorded by every analysed
    model; raises :class:`ConfigError` naming the key, the bad value, the models lacking it and
    the valid values (layers every model records)."""
    models = recorded_layers(cfg)
    if not models:
        return
    first = next(iter(models.values()))[0]
    common = [layer for layer in first if all(layer in ls for ls, _ in models.values())]
    checks = [(f"similarity.{_spec(m).section}.layers (method {m})", method_layers(cfg, m))
              for m in dict.fromkeys(cfg["similarity"]["methods"]) if _spec(m).layers is None]
    if transferability_active(cfg):
        checks.append(("transferability.layers", cfg["transferability"]["layers"]))
    for key, layers in checks:
        for layer in layers:
            lacking = {name: where for name, (ls, where) in models.items() if layer not in ls}
            if lacking:
                names = sorted(lacking)
                shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
                raise ConfigError(
                    f"config key {key}: layer {layer!r} is not "
                    f"recorded by models {shown} (their layers are set by "
                    f"{', '.join(sorted(set(lacking.values())))}); valid values: {common}")


def _check_targets(cfg: Mapping[str, Any]) -> None:
    tg = cfg["targets"]
    source, user = tg["source"], tg["user"]
    if source == "minitaskonomy" and not cfg["minitaskonomy"]["enabled"]:
        raise ConfigError("config key targets.source = minitaskonomy needs minitaskonomy.enabled: true "
                          "(the labels are those of the rendered probe scenes)")
    if source == "taskonomy" and cfg["probe"]["source"] != "urls":
        raise ConfigError(f"config key targets.source = taskonomy needs probe.source: urls (the labels are "
                          f"downloaded beside the probe images of the sample building), not "
                          f"{cfg['probe']['source']!r}")
    if source != "user":
        return
    if cfg["probe"]["source"] != "folder":
        raise ConfigError(f"config key targets.source = user needs probe.source: folder (the labels name "
                          f"the images of probe.folder.path), not {cfg['probe']['source']!r}")
    key = "class_csv" if user["kind"] == "class" else "map_dir"
    if not user[key]:
        raise ConfigError(f"config key targets.user.{key} is needed for targets.user.kind = {user['kind']} "
                          f"(targets.source = user)")
    other = "map_dir" if key == "class_csv" else "class_csv"
    if user[other]:
        raise ConfigError(f"config key targets.user.{other} does not apply to targets.user.kind = "
                          f"{user['kind']}; give targets.user.{key}")


def _check_cross_keys(cfg: Mapping[str, Any]) -> None:
    keep = cfg["similarity"]["cca"]["keep"]
    if isinstance(keep, float) and keep > 1:
        raise ConfigError(f"config key similarity.cca.keep: {keep!r} is neither a fraction in (0, 1] "
                          f"nor a whole number of directions; valid values: 0 < keep <= 1.0, or 1, 2, ...")
    mt = cfg["minitaskonomy"]
    if mt["enabled"] and cfg["preprocessing"]["resolution"] != mt["resolution"]:
        raise ConfigError(
            f"config key minitaskonomy.resolution ({mt['resolution']}) must equal "
            f"preprocessing.resolution ({cfg['preprocessing']['resolution']}): the probe images are "
            "fed to the encoders at the resolution they were trained on")
    _check_targets(cfg)
    tax = cfg["taxonomy"]
    if tax["groundtruth"] == "minitaskonomy" and not mt["enabled"] and not tax["groundtruth_csv"]:
        raise ConfigError("config key taxonomy.groundtruth = minitaskonomy needs taxonomy.groundtruth_csv "
                          "(a source x target affinity CSV) or minitaskonomy.enabled: true")


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration the workflow runs: validated, checked across keys, derived keys set.

    Derived keys: with ``standin.enabled`` the Taskonomy weights come from the stand-in zoo
    (``taskonomy.weights_source`` / ``weights_manifest``); with ``minitaskonomy.enabled`` the
    Mini-Taskonomy encoders are the models (``tasks`` empty, ``models`` one entry per task)
    and its measured affinity is the ground truth (``taxonomy.groundtruth*``). Then every
    analysed layer must be recorded by every model. Every mapping comes back in sorted key order
    (lists keep theirs), so the order of keys in a config file changes no rule's params and
    reruns nothing. Returns a new dict; ``config`` is untouched.
    """
    cfg = validate_config(config, references=False)
    _check_cross_keys(cfg)
    data = cfg["data_dir"]
    if cfg["standin"]["enabled"]:
        cfg["taskonomy"]["weights_source"] = f"{data}/standin/"
        cfg["taskonomy"]["weights_manifest"] = f"{data}/standin/SHA256SUMS"
    mt = cfg["minitaskonomy"]
    if mt["enabled"]:
        from tasksim.minitaskonomy import layout
        from tasksim.minitaskonomy.models import ENCODER_LAYERS
        from tasksim.minitaskonomy.training import BUILDER

        cfg["tasks"] = []
        cfg["models"] = [
            {"name": t, "builder": BUILDER, "builder_kwargs": {}, "weights": layout.weights(data, t),
             "sha256": None, "layers": list(ENCODER_LAYERS), "low_saturation": False,
             "resolution": mt["resolution"]}
            for t in mt["tasks"]
        ]
        files = layout.files(data)
        cfg["taxonomy"]["groundtruth"] = "minitaskonomy"
        cfg["taxonomy"]["groundtruth_csv"] = files["affinity"]
        cfg["taxonomy"]["groundtruth_wins_csv"] = files["wins_vs_pixels"]
    cfg["targets"]["source"] = target_source(cfg)
    check_references(cfg)
    return _sorted_keys(cfg)


def _sorted_keys(value: Any) -> Any:
    """``value`` with every mapping in it rebuilt in sorted key order (lists keep their order)."""
    if isinstance(value, Mapping):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load a YAML configuration file, apply ``overrides`` (top-level keys) and validate it."""
    path = Path(path)
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"configuration file {path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping, not {type(raw).__name__}")
    raw.update(overrides or {})
    try:
        return validate_config(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def model_names(cfg: Mapping[str, Any]) -> list[str]:
    """All model names of a validated configuration: Taskonomy tasks, then user models."""
    return list(cfg["tasks"]) + [m["name"] for m in cfg["models"]]


def schema_markdown(schema: Mapping[str, Any] | None = None) -> str:
    """Markdown table of every key of the schema: key, default, description."""
    import json

    schema = load_schema() if schema is None else schema
    rows: list[str] = []

    def walk(sch: Mapping[str, Any], path: str) -> None:
        for key, sub in sch.get("properties", {}).items():
            p = f"{path}.{key}" if path else key
            d = sub.get("default", "(required)")
            if isinstance(d, (list, dict)) and len(json.dumps(d)) > 60:
                d = json.dumps(d)[:57] + "..."
            shown = d if isinstance(d, str) else json.dumps(d)
            rows.append(f"| `{p}` | `{shown}` | {sub.get('description', '').strip()} |")
            if "properties" in sub:
                walk(sub, p)
            items = sub.get("items")
            if isinstance(items, dict) and "properties" in items:
                walk(items, p + "[]")

    walk(schema, "")
    return "\n".join(rows) + "\n"


def similarity_methods(schema: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every similarity method the registry or the schema knows, with its options and defaults.

    One dict per method (the schema's order, then methods only the registry has): ``name``,
    ``kind`` (``features`` / ``attribution``; None if not registered), ``description``,
    ``registered``, ``in_config`` (accepted by ``similarity.methods``), ``default_run`` (in that
    key's default list), ``section`` (``similarity.<section>`` holding its configuration
    options), ``config_options`` (``[(key, default, description), ...]`` of that section) and
    ``function_options`` (``{name: default}`` of the registered function, for the Python API).
    A missing schema file (an installed package without the workflow folder) leaves the
    configuration fields empty.
    """
    from tasksim.similarity.registry import REGISTRY, available_methods, method_options

    if schema is None:
        schema = load_schema() if SCHEMA_PATH.is_file() else {}
    sim = schema.get("properties", {}).get("similarity", {}).get("properties", {})
    meth = sim.get("methods", {})
    accepted = list(meth.get("items", {}).get("enum", []))
    default_run = list(meth.get("default", []))
    registered = available_methods()
    names = accepted + [m for m in registered if m not in accepted]
    out = []
    for name in names:
        spec = REGISTRY.get(name)
        section = spec.section if spec else name
        props = sim.get(section, {}).get("properties", {}) if name in accepted else {}
        opts = spec.options() if spec else {}
        out.append({
            "name": name, "kind": spec.kind if spec else None,
            "description": spec.description if spec else "",
            "registered": spec is not None, "in_config": name in accepted,
            "default_run": name in default_run,
            "section": f"similarity.{section}" if props else None,
            "config_options": [(k, v.get("default"), " ".join(str(v.get("description", "")).split()))
                               for k, v in props.items() if k in opts or k == "layers"],
            "function_options": method_options(name) if spec else {},
        })
    return out


if __name__ == "__main__":  # python -m tasksim.config --markdown
    import sys

    if sys.argv[1:] == ["--markdown"]:
        print(schema_markdown(), end="")


__all__ = ["ConfigError", "SCHEMA_PATH", "analyses", "check_references", "coerce_strings",
           "load_config", "load_schema", "method_layers", "method_options", "method_section",
           "model_names", "recorded_layers", "resolve", "similarity_methods", "validate_config",
           "canonical"]
