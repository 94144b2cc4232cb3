"""Rule standin_zoo: seeded random Taskonomy checkpoints in the official format + manifest."""
from tasksim.snakeutils import setup
from tasksim.zoo import write_standin_zoo

log = setup(snakemake)
p = snakemake.params.standin
out_dir = snakemake.output.manifest.rsplit("/", 1)[0]
manifest = write_standin_zoo(snakemake.params.tasks, out_dir, seed=p["seed"],
                             groups=p["groups"], perturbation=p["perturbation"])
log.info("wrote stand-in zoo %s", manifest)
