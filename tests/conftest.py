"""Shared fixtures: paths, the ../shared folder, a small stand-in zoo and probe set."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


#: Test files that take minutes, longest first. `make test` runs the suite on two pytest-xdist
#: workers, one file per worker at a time (--dist loadfile, in collection order); starting the
#: longest files first keeps one worker from finishing long after the other. The Slurm tests wait
#: on the scheduler most of the time, so they overlap well with the compute-bound ones.
LONG_FILES = ("test_slurm.py", "test_real_config_fake_github.py", "test_pipeline.py",
              "test_minitaskonomy_pipeline.py", "test_taxonomy_rules.py")


def pytest_collection_modifyitems(config, items) -> None:
    """Put the long test files first (stable: the order inside each file is kept)."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


def snakemake_exe() -> str:
    """The snakemake executable of this interpreter's environment."""
    exe = Path(os.sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else (shutil.which("snakemake") or "snakemake")


@pytest.fixture(scope="session")
def shared_taskonomy() -> Path:
    path = SHARED / "taskonomy"
    if not path.is_dir():
        pytest.skip(f"../shared/taskonomy not found at {path} (Taskonomy ground-truth files)")
    return path


@pytest.fixture(scope="session")
def standin_zoo(tmp_path_factory) -> Path:
    """Three stand-in Taskonomy checkpoints (normal and depth_zbuffer in one group)."""
    from tasksim.zoo import write_standin_zoo

    out = tmp_path_factory.mktemp("standin")
    write_standin_zoo(["normal", "depth_zbuffer", "edge_texture"], out, seed=0,
                      groups={"g": ["normal", "depth_zbuffer"]}, perturbation=0.05)
    return out


@pytest.fixture(scope="session")
def scene_probe(tmp_path_factory) -> Path:
    """A probe file of 6 generated 256 px scenes."""
    from tasksim.probe import write_probe
    from tasksim.scenes import render_rgb

    imgs = render_rgb(6, 256, seed=3)
    path = tmp_path_factory.mktemp("probe") / "scenes.h5"
    write_probe(path, [f"scene_{i:06d}" for i in range(6)], list(imgs), 6, 256, "generated:seed=3")
    return path


def rng_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, size, size, 3)) * 255).astype(np.uint8)


# ------------------------------------------------------------------ the CI-size demo (Mini-Taskonomy)

@pytest.fixture(scope="session")
def demo_ci_local(tmp_path_factory) -> tuple[Path, Path]:
    """The CI-size demo run locally once per session: ``(run directory, config file)``; the
    config's ``data_dir`` and ``results_dir`` are relative to the run directory.

    With ``TASKSIM_DEMO_CI_RUN=<dir>`` (set by .ci/run, which has just run ``make demo
    DEMO_CONFIG=config/demo-ci.yaml`` there) the run is that one: the same Snakemake command
    brings it up to date (nothing to do when it finished) instead of running it all again."""
    import subprocess
    import sys

    from demo_helpers import demo_ci_config

    done = os.environ.get("TASKSIM_DEMO_CI_RUN")
    if done:
        import yaml

        root = Path(done).resolve()
        cfg = demo_ci_config(tmp_path_factory.mktemp("demo_ci_config"))
        data = yaml.safe_load(cfg.read_text())
        plain = yaml.safe_load((REPO / "config" / "demo-ci.yaml").read_text())
        data["data_dir"], data["results_dir"] = plain["data_dir"], plain["results_dir"]
        if "groundtruth_source" in data.get("taxonomy", {}):  # as the Makefile gives it
            data["taxonomy"]["groundtruth_source"] = "../shared/taskonomy"
        cfg.write_text(yaml.safe_dump(data))
    else:
        root = tmp_path_factory.mktemp("demo_ci_local")
        cfg = demo_ci_config(root)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([snakemake_exe(), "-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile",
                           str(cfg), "-d", str(root)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return root, cfg
