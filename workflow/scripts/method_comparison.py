"""Rule method_comparison: every label-free similarity matrix and every estimator matrix of the
run against the ground truth in one table and one figure, with the noise ceiling and the
popularity floor."""
from tasksim.snakeutils import hdf5_locking, run_label, setup
from tasksim.transferability.comparison import method_comparison_files

log = setup(snakemake)
sm, inp = snakemake, snakemake.input
method_comparison_files(inp.similarity, inp.matrices, inp.groundtruth, sm.output.csv, sm.output.png,
                        sources=sm.params.sources, losses=inp.losses or None,
                        groundtruth_label=sm.params.groundtruth_label, run=run_label(sm),
                        seed=sm.params.seed, confidence=sm.params.confidence,
                        n_bootstrap=sm.params.n_bootstrap,
                        rdm_files=dict(zip(sm.params.sources, inp.get("rdms", []))) or None,
                        activation_files=dict(zip(sm.params.sources, inp.get("activations", []))) or None,
                        options=sm.params.options, max_mb=sm.params.max_mb,
                        locking=hdf5_locking(sm))
