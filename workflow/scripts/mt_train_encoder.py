"""Rule mt_train_encoder: train the encoder of one task; zoo checkpoint + fixed-name copy + its head."""
from tasksim.minitaskonomy.stage import train_encoder_files
from tasksim.snakeutils import setup

log = setup(snakemake)
sm = snakemake
train_encoder_files(sm.params.task, sm.input.scenes, sm.params.encoders, sm.output.weights, sm.output.sha256,
                    sm.output.head, sm.params.epochs, sm.params.seed, int(sm.threads))
