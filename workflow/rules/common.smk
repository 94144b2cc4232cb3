# Shared helpers: the resolved config, paths, target lists. Rules only wire files together.
import os

from tasksim.config import (
    analyses as config_analyses,
    method_layers,
    model_names,
    resolve,
    target_tasks,
    transferability_active,
    transferability_scored,
)
from tasksim.snakeutils import code_digest, result_options
from tasksim.runlock import hold_run_lock, release_run_lock

# The one resolution of the configuration (validation, cross-key checks, derived keys); the rule
# files only read it from here on.
_resolved = resolve(config)
config.clear()
config.update(_resolved)

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
    return code_digest(
        os.path.join(workflow.basedir, "workflow", "scripts", f"{name}.py")
    )


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


def analyses():
    """All (method, layer) pairs of the configuration, in config order."""
    return config_analyses(config)


def similarity_file(method, layer, ext="h5"):
    return f"{RESULTS}/similarity/{method}/{layer}.{ext}"


# Later rule files append functions returning their final outputs.
TARGET_HOOKS = []


def all_targets():
    """Every final output of the run: the activations, then what each stage's rule file adds
    (similarity matrices, Mini-Taskonomy's measured transfer, trees, scores, figures).
    """
    targets = [activation_file(m) for m in MODELS]
    for extra in TARGET_HOOKS:
        targets += extra()
    return targets
