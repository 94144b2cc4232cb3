# Shared helpers: validated config, paths, target lists. Rules only wire files together.
import os

from tasksim.config import model_names, validate_config
from tasksim.snakeutils import code_digest, result_options
from tasksim.runlock import hold_run_lock, release_run_lock

_validated = validate_config(config)
config.clear()
config.update(_validated)

DATA = config["data_dir"]
RESULTS = config["results_dir"]
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
MODELS = model_names(config)
PROBE = f"{DATA}/probe/{config['probe']['name']}.h5"
# The report's front page, written by the summary rule (what was run, what came out).
REPORT_FRONT_PAGE = f"{RESULTS}/scores/report_front_page.rst"
PROBE_URL_LIST = f"{DATA}/probe/{config['probe']['name']}.urls.txt"
STANDIN_MANIFEST = f"{DATA}/standin/SHA256SUMS"
if config["standin"]["enabled"]:
    config["taskonomy"]["weights_source"] = f"{DATA}/standin/"
    config["taskonomy"]["weights_manifest"] = STANDIN_MANIFEST


wildcard_constraints:
    model="|".join(MODELS) if MODELS else "[^/]+",


# One run at a time per data and results directory (also across working directories): taken
# only when jobs run (Snakemake calls onstart neither for dry runs nor in spawned job processes).
onstart:
    hold_run_lock([DATA, RESULTS])


onsuccess:
    release_run_lock()


onerror:
    release_run_lock()


def script_code(name):
    """Digest of the code a rule's script runs (the script and the package modules it imports):
    a rule param, so changed code reruns exactly the jobs it affects."""
    return code_digest(os.path.join(workflow.basedir, "scripts", f"{name}.py"))


def gpu_resources():
    """GPU resource request of network rules (extraction, attribution) when device is cuda."""
    return 1 if config["device"] == "cuda" else 0


def model_config(wildcards):
    """The part of the config that defines one model (so params change only when it does)."""
    m = wildcards.model
    return {
        "tasks": [m] if m in config["tasks"] else [],
        "models": [e for e in config["models"] if e["name"] == m],
        "taskonomy": config["taskonomy"],
        "preprocessing": config["preprocessing"],
    }


def activation_file(model):
    return f"{RESULTS}/activations/{model}.h5"


def all_targets():
    targets = [activation_file(m) for m in MODELS]
    for extra in TARGET_HOOKS:
        targets += extra()
    return targets


ATTRIBUTION_KINDS = {
    "attribution_saliency": "saliency",
    "attribution_gradxinput": "gradxinput",
    "attribution_elrp": "elrp",
}


def method_layers(method):
    """Layers analysed by one similarity method."""
    sim = config["similarity"]
    if method == "rsa":
        return sim["rsa"]["layers"]
    if method in ("svcca", "pwcca"):
        return sim["cca"]["layers"]
    if method in ("cka_linear", "cka_rbf"):
        return sim["cka"]["layers"]
    if method in ATTRIBUTION_KINDS:
        return ["input"]
    raise ValueError(f"unknown similarity method {method!r}")


def analyses():
    """All (method, layer) pairs of the configuration, in config order."""
    return [
        (m, layer)
        for m in config["similarity"]["methods"]
        for layer in method_layers(m)
    ]


def similarity_file(method, layer, ext="h5"):
    return f"{RESULTS}/similarity/{method}/{layer}.{ext}"


# Later rule files append functions returning their final outputs.
TARGET_HOOKS = []
