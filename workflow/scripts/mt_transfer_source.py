"""Rule mt_transfer_source: readouts from ONE frozen source to every target, per-image test losses."""
from tasksim.minitaskonomy.stage import transfer_source_file
from tasksim.snakeutils import setup

log = setup(snakemake)
sm = snakemake
transfer_source_file(sm.params.source, sm.input.weights[0] if sm.input.weights else None, sm.input.transfer,
                     sm.input.test, sm.params.targets, sm.params.epochs, sm.params.seed, sm.output.losses)
