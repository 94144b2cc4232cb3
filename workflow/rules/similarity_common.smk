# Helper functions and constants of similarity.smk (kept apart: Snakemake style keeps rules and functions in separate files).
SIM = config["similarity"]
FEATURE_METHODS = [
    m for m in SIM["methods"] if m in ("svcca", "pwcca", "cka_linear", "cka_rbf")
]
ATTR_METHODS = [m for m in SIM["methods"] if m in ATTRIBUTION_KINDS]
ATTR_KINDS = [ATTRIBUTION_KINDS[m] for m in ATTR_METHODS]


def feature_options(method):
    """Options of a feature method, as the registry functions take them."""
    if method in ("svcca", "pwcca"):
        c = SIM["cca"]
        return {"keep": c["k"] if c["k"] else c["variance"], "conv_mode": c["mode"]}
    c = SIM["cka"]
    opts = {"debiased": c["debiased"]}
    if method == "cka_rbf":
        opts["threshold"] = c["rbf_threshold"]
    return opts
