# Helper functions and constants of transferability.smk (kept apart: Snakemake style keeps rules and functions in separate files).
from tasksim.taxonomy.protocols import groundtruth_label
from tasksim.transferability.estimators import ESTIMATORS

TR = config["transferability"]
TR_DIR = f"{RESULTS}/transferability"
# The estimators are scored, like the label-free methods' DDS protocol, against the transfer
# affinity: Taskonomy's all_affinities, or the measured Mini-Taskonomy affinity.
TR_SCORED = transferability_scored(config)
TR_GROUNDTRUTH = groundtruth_inputs()["gt_dds_affinity"] if TR_SCORED else []
TR_GROUNDTRUTH_LABEL = groundtruth_label(GT_KIND, "dds_affinity")
# Configured estimators that read a source's categorical head (LEEP, NCE) instead of its features.
TR_HEAD_ESTIMATORS = [
    e for e in TR["estimators"] if e in ESTIMATORS and ESTIMATORS[e].input != "features"
]


def source_head(wildcards):
    """The categorical head's probabilities of the probe images for a source that has one
    (Mini-Taskonomy's class_object and segment_semantic encoders) when an estimator reads
    them; [] otherwise (LEEP and NCE then say the source has no categorical head)."""
    if MT["enabled"] and TR_HEAD_ESTIMATORS and wildcards.model in MT_HEAD_TASKS:
        return [mt_layout.head_probe(DATA, wildcards.model)]
    return []


def transferability_outputs():
    """Every estimator's matrix at every layer of transferability.layers; where the targets have
    a transfer ground truth, their score files and the comparison of both method families
    (table and figure)."""
    matrices = [
        f"{TR_DIR}/{e}/{layer}.csv" for e in TR["estimators"] for layer in TR["layers"]
    ]
    if not TR_SCORED:
        return matrices
    return (
        matrices
        + [
            f"{TR_DIR}/scores/{e}/{layer}.json"
            for e in TR["estimators"]
            for layer in TR["layers"]
        ]
        + [f"{TR_DIR}/comparison.csv", f"{TR_DIR}/comparison.png"]
    )


def comparison_bootstrap_inputs(wildcards):
    """What the comparison rebuilds the label-free matrices from on the estimators' resamples
    (each method's table entry declares it): stored RDMs, and/or the activations."""
    if TR["n_bootstrap"] == 0:
        return {}
    kinds = {get_method(m).bootstrap for m in TAX_METHODS}
    out = {}
    if "rdms" in kinds:
        out["rdms"] = [f"{RESULTS}/rdms/{x}.h5" for x in MODELS]
    if kinds & {"grams", "recompute"}:
        out["activations"] = [activation_file(x) for x in MODELS]
    return out
