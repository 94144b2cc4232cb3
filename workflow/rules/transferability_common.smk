# Helper functions and constants of transferability.smk (kept apart: Snakemake style keeps rules and functions in separate files).
TR = config["transferability"]
TR_DIR = f"{RESULTS}/transferability"


def transferability_outputs():
    """Every estimator's score file at every layer of transferability.layers, and the comparison
    of both method families (table and figure)."""
    return [
        f"{TR_DIR}/scores/{e}/{layer}.json"
        for e in TR["estimators"]
        for layer in TR["layers"]
    ] + [f"{TR_DIR}/comparison.csv", f"{TR_DIR}/comparison.png"]
