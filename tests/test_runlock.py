"""One run per data / results directory: the lock, its holder message, and the workflow's use of it."""
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import yaml

from tasksim.runlock import LOCK_NAME, RunLockedError, hold_run_lock, release_run_lock

from conftest import REPO, snakemake_exe

HOLDER = textwrap.dedent("""
    import sys, time
    from tasksim.runlock import hold_run_lock
    hold_run_lock(sys.argv[1:])
    print("held", flush=True)
    sys.stdin.read()  # hold until the test closes stdin
""")


def _holder(dirs, cwd):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, *map(str, dirs)], cwd=cwd, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_naming_the_first_then_gets_it_after_release(tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    holder = _holder([data, results], other_cwd)
    try:
        with pytest.raises(RunLockedError) as info:
            hold_run_lock([tmp_path / "free", results])
        msg = str(info.value)
        for frag in (str(results), f"pid={holder.pid}", f"host={socket.gethostname()}",
                     f"cwd={other_cwd}", "since=20"):
            assert frag in msg, (frag, msg)
        # all or none: the free directory was not left locked by the failed attempt
        hold_run_lock([tmp_path / "free"])
        release_run_lock()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    held = hold_run_lock([data, results])
    try:
        assert held == [data / LOCK_NAME, results / LOCK_NAME]
        assert f"pid={os.getpid()}" in (data / LOCK_NAME).read_text()
    finally:
        release_run_lock()
    assert (data / LOCK_NAME).read_text() == ""  # released: no holder recorded


def test_same_directory_twice_is_one_lock(tmp_path):
    try:
        assert hold_run_lock([tmp_path, tmp_path / "."]) == [tmp_path / LOCK_NAME]
    finally:
        release_run_lock()


def test_workflow_refuses_a_run_while_another_holds_its_directories(tmp_path):
    """A run from another working directory on the same absolute directories fails naming the
    holder; the dry run is not blocked; after the release the run goes through."""
    data, results = tmp_path / "shared" / "data", tmp_path / "shared" / "results"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(data), "results_dir": str(results), "tasks": ["normal"],
        "probe": {"name": "p", "source": "generated", "n_images": 2},
        "preprocessing": {"resolution": 16}}))
    target = str(data / "probe" / "p.h5")
    workdir = tmp_path / "run2"
    workdir.mkdir()

    def run(*extra):
        return subprocess.run([snakemake_exe(), "-s", str(REPO / "Snakefile"), "--cores", "1",
                               "--configfile", str(cfg), "-d", str(workdir), *extra, target],
                              cwd=REPO, capture_output=True, text=True, timeout=600)

    holder = _holder([data, results], tmp_path)
    try:
        dry = run("-n")
        assert dry.returncode == 0, dry.stderr[-3000:]
        proc = run()
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out[-3000:]
        assert f"pid={holder.pid}" in out and f"cwd={tmp_path}" in out, out[-3000:]
        assert "in use by another tasksim run" in out, out[-3000:]
        assert not os.path.exists(target)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    proc = run()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert os.path.exists(target)
    assert (data / LOCK_NAME).read_text() == "" and (results / LOCK_NAME).read_text() == ""
