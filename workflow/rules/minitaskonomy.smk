# Mini-Taskonomy: render scenes -> one encoder (and its head) per task -> readouts (one job per
# source) -> measured AHP affinity; the categorical heads' probabilities of the probe images
# (for LEEP and NCE in transferability.smk). When config minitaskonomy.enabled, the pipeline's
# models ARE these encoders (user-model style, builder tasksim.minitaskonomy.models:build_encoder),
# their weights come from mt_train_encoder (which outranks download_weights for
# data_dir/weights/<task>.pth), and the taxonomy stage scores every similarity method against the
# measured affinity.
# Science: tasksim.scenes, tasksim.minitaskonomy; adapters: workflow/scripts/mt_*.py.
# The models and ground truth it implies are set once by tasksim.config.resolve (common.smk).
from tasksim.minitaskonomy import layout as mt_layout
from tasksim.minitaskonomy.data import MINI_TASKS
from tasksim.minitaskonomy.heads import categorical_head_tasks

MT = config["minitaskonomy"]
MT_DIR = mt_layout.stage_dir(DATA)
MT_TASKS = list(MT["tasks"])
MT_SOURCES = MT_TASKS + ["pixels", "random"]
# Configured tasks whose trained head is a classifier (class_object, segment_semantic).
MT_HEAD_TASKS = categorical_head_tasks(MT_TASKS)
MT_SPLITS = (
    {  # split -> (first scene index, number of scenes); splits are disjoint, one seed
        "train": (0, MT["n_train"]),
        "transfer": (MT["n_train"], MT["n_transfer"]),
        "test": (MT["n_train"] + MT["n_transfer"], MT["n_test"]),
    }
)
MT_FILES = mt_layout.files(DATA)
MT_SCENES = mt_layout.scenes(DATA)


# With minitaskonomy.enabled the resolved config's models are the mini encoders, whose weights
# this file trains (tasksim.config.resolve); otherwise weights are downloaded.
if MT["enabled"]:

    ruleorder: mt_train_encoder > download_weights

else:

    ruleorder: download_weights > mt_train_encoder


wildcard_constraints:
    split="train|transfer|test",


rule mt_render:
    output:
        scenes=f"{MT_DIR}/scenes_{{split}}.h5",
    log:
        f"{LOGS}/minitaskonomy/render_{{split}}.log",
    benchmark:
        f"{BENCH}/minitaskonomy/render_{{split}}.tsv"
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=lambda wc: 1000 + MT_SPLITS[wc.split][1] * MT["resolution"] ** 2 // 400,
        runtime=30,
    params:
        code=script_code("mt_render"),
        start=lambda wc: MT_SPLITS[wc.split][0],
        n=lambda wc: MT_SPLITS[wc.split][1],
        size=MT["resolution"],
        seed=MT["seed"],
    script:
        "../scripts/mt_render.py"


rule mt_train_encoder:
    input:
        scenes=MT_SCENES["train"],
    output:
        weights=f"{DATA}/weights/{{task}}.pth",
        sha256=f"{MT_DIR}/encoders/{{task}}.sha256",
        head=mt_layout.head(DATA, "{task}"),
    log:
        f"{LOGS}/minitaskonomy/train_encoder/{{task}}.log",
    benchmark:
        f"{BENCH}/minitaskonomy/train_encoder/{{task}}.tsv"
    wildcard_constraints:
        task="|".join(MT_TASKS),
    conda:
        "../envs/tasksim.yaml"
    threads: MT["threads"]
    resources:
        mem_mb=MT["mem_mb"],
        runtime=60,
    params:
        code=script_code("mt_train_encoder"),
        task=lambda wc: wc.task,
        epochs=MT["epochs"],
        seed=MT["seed"],
        encoders=lambda wc, output: os.path.dirname(output.sha256),
    script:
        "../scripts/mt_train_encoder.py"


rule mt_head_probe:
    input:
        weights=f"{DATA}/weights/{{task}}.pth",
        head=mt_layout.head(DATA, "{task}"),
        probe=PROBE,
    output:
        probabilities=mt_layout.head_probe(DATA, "{task}"),
    log:
        f"{LOGS}/minitaskonomy/heads/{{task}}.log",
    benchmark:
        f"{BENCH}/minitaskonomy/heads/{{task}}.tsv"
    wildcard_constraints:
        task="|".join(categorical_head_tasks(MINI_TASKS)),
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("mt_head_probe"),
        task=lambda wc: wc.task,
        low_saturation=lambda wc: next(
            m["low_saturation"] for m in config["models"] if m["name"] == wc.task
        ),
    script:
        "../scripts/mt_head_probe.py"


rule mt_transfer_source:
    input:
        weights=lambda wc: (
            [f"{DATA}/weights/{wc.source}.pth"] if wc.source in MT_TASKS else []
        ),
        transfer=MT_SCENES["transfer"],
        test=MT_SCENES["test"],
    output:
        losses=f"{MT_DIR}/transfer/losses_{{source}}.npz",
    log:
        f"{LOGS}/minitaskonomy/transfer/{{source}}.log",
    benchmark:
        f"{BENCH}/minitaskonomy/transfer/{{source}}.tsv"
    wildcard_constraints:
        source="|".join(MT_SOURCES),
    conda:
        "../envs/tasksim.yaml"
    threads: MT["threads"]
    resources:
        mem_mb=MT["mem_mb"],
        runtime=60,
    params:
        code=script_code("mt_transfer_source"),
        source=lambda wc: wc.source,
        targets=MT_TASKS,
        epochs=MT["transfer_epochs"],
        seed=MT["seed"],
    script:
        "../scripts/mt_transfer_source.py"


rule mt_affinity:
    input:
        losses=[f"{MT_DIR}/transfer/losses_{s}.npz" for s in MT_SOURCES],
    output:
        losses=MT_FILES["losses"],
        affinity=report(
            MT_FILES["affinity"],
            caption="../report/minitaskonomy.rst",
            category="Ground truth",
            subcategory="Mini-Taskonomy measured transfer",
            labels={"file": "affinity"},
        ),
        affinity_pkl=MT_FILES["affinity_pkl"],
        wins_vs_pixels=report(
            MT_FILES["wins_vs_pixels"],
            caption="../report/minitaskonomy.rst",
            category="Ground truth",
            subcategory="Mini-Taskonomy measured transfer",
            labels={"file": "wins_vs_pixels"},
        ),
        wins_vs_pixels_pkl=MT_FILES["wins_vs_pixels_pkl"],
    log:
        f"{LOGS}/minitaskonomy/affinity.log",
    conda:
        "../envs/tasksim.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("mt_affinity"),
        sources=MT_SOURCES,
        targets=MT_TASKS,
    script:
        "../scripts/mt_affinity.py"


if MT["enabled"]:
    TARGET_HOOKS.append(lambda: list(MT_FILES.values()))
