# Helper functions and constants of similarity.smk (kept apart: Snakemake style keeps rules and functions in separate files).
from tasksim.similarity.attribution import map_kind
from tasksim.config import method_options
from tasksim.similarity.registry import methods_reading

SIM = config["similarity"]
# Which rule runs a method comes from what its entry in the method table reads.
READS = {r: methods_reading(r) for r in ("activations", "rdms", "attribution_maps")}
ATTR_KINDS = [map_kind(m) for m in SIM["methods"] if m in READS["attribution_maps"]]


def method_constraint(reads):
    """Wildcard constraint: the registered methods whose rule reads ``reads``."""
    return "|".join(READS[reads]) or "no-such-method"
