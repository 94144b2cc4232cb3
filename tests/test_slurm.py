"""Cluster submission on a real single-node Slurm.

The `slurm` tests need a running controller and an idle node, normally started by
`.ci/setup-slurm` (as root) before pytest.  Without one they are skipped with the
reason, unless TASKSIM_REQUIRE_SLURM=1 (set by CI after a successful set-up), which
turns "no Slurm" into a failure.  With TASKSIM_SLURM_AUTOSTART=1 (root needed) the
session runs `.ci/setup-slurm` itself and, at the end, stops exactly the daemons
that this run started, by PID.  Daemons started by CI are left to CI
(`.ci/setup-slurm stop`).

Every Snakemake run goes through `--profile profiles/slurm` (or slurm-gpu) with
`profiles/default` as workflow profile, exactly as from the repository root, and
is wrapped in `timeout -k 10 <N>`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_helpers import (
    REPO,
    SETUP_SCRIPT,
    USABLE,
    SnakemakeLog,
    cancel_jobs_in_dir,
    controller_up,
    copy_workflow,
    job_states,
    jobs_in_dir,
    node_states,
    recorded_pids,
    run_snakemake,
    snakemake_env,
    start_snakemake,
    stop_pids,
    tree_files,
    wait_for_idle_node,
)

WORKFLOW = REPO / "tests" / "data" / "slurm_workflow"
PROFILES = REPO / "profiles"
SLURM_ARGS = [
    "--profile", str(PROFILES / "slurm"),
    "--workflow-profile", str(PROFILES / "default"),
]
RUN_LIMIT_S = 300  # timeout(1) bound of one Snakemake run through Slurm
FAIL_LIMIT_S = 180  # the failing run must end on its own well before this
TARGETS = ["all", "results/device.txt"]  # the whole small workflow, GPU rule included


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def slurm():
    """A usable Slurm (controller answering, node idle), or skip with the reason."""
    require = os.environ.get("TASKSIM_REQUIRE_SLURM") == "1"
    started: list[tuple[str, int]] = []  # daemons this session started (autostart)

    def unavailable(msg):
        stop_pids(started)
        if require:
            pytest.fail(f"{msg} (TASKSIM_REQUIRE_SLURM=1)", pytrace=False)
        pytest.skip(msg)

    if not controller_up() and os.environ.get("TASKSIM_SLURM_AUTOSTART") == "1":
        before = set(recorded_pids())
        proc = subprocess.run(
            ["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=1200
        )
        started = [r for r in recorded_pids() if r not in before]
        if proc.returncode != 0:
            unavailable(
                f".ci/setup-slurm exited {proc.returncode}: {proc.stderr.strip()[-800:]}"
            )
    if shutil.which("sinfo") is None:
        unavailable("no Slurm here: `sinfo` not found (run .ci/setup-slurm as root first)")
    if not controller_up():
        unavailable("no Slurm controller answers `scontrol ping` (run .ci/setup-slurm as root)")
    if wait_for_idle_node(120) is None:
        # busy with others' jobs (mix/alloc) is usable, ours just queue; down is not
        if not any(s.startswith(USABLE) and not s.endswith("*") for s in node_states()):
            unavailable(f"Slurm is up but no node is usable: {node_states()} (see `sinfo -N -l`)")
    yield
    # Stop only what this session started; CI-started daemons stay for CI to stop.
    stop_pids(started)


@pytest.fixture(scope="session")
def local_reference(tmp_path_factory):
    """The small workflow run locally (profiles/default): the reference outputs."""
    wd = copy_workflow(WORKFLOW, tmp_path_factory.mktemp("local") / "wf")
    run = run_snakemake(
        wd, ["--profile", str(PROFILES / "default"), "--cores", "2", *TARGETS], "run.log", 120
    )
    assert run.rc == 0, run.log[-3000:]
    return wd


def _slurm_ids_in_rule_logs(wd: Path) -> dict[str, str]:
    """log file -> SLURM_JOB_ID the job saw (the small workflow's rules record it)."""
    res = {}
    for p in sorted((wd / "logs").rglob("*.log")):
        line = p.read_text().splitlines()[0]
        assert line.startswith("SLURM_JOB_ID="), (p, line)
        res[str(p.relative_to(wd))] = line.split("=", 1)[1]
    return res


# --------------------------------------------------------------------------- tests

@pytest.mark.slurm
def test_workflow_through_slurm_equals_local_run(slurm, local_reference, tmp_path):
    wd = copy_workflow(WORKFLOW, tmp_path / "wf")
    run = run_snakemake(wd, [*SLURM_ARGS, *TARGETS], "run.log", RUN_LIMIT_S)
    text = run.log
    assert run.rc == 0, text[-4000:]
    log = SnakemakeLog.parse(text)

    # every job but the local target rule `all` was submitted to Slurm
    non_local = {j for j, (rule, _) in log.jobs.items() if rule != "all"}
    assert log.stats_total == len(log.jobs) == 4 + 4 + 1 + 1 + 1
    assert set(log.submitted) == non_local
    slurm_ids = set(log.submitted.values())
    assert len(slurm_ids) == len(non_local)

    # ... Slurm knows each of them as completed, run from this directory
    states = job_states(slurm_ids)
    assert all(s == "COMPLETED" for s in states.values()), states
    assert set(jobs_in_dir(wd)) == slurm_ids
    # ... each job ran inside its allocation (SLURM_JOB_ID seen by the rule) ...
    seen = _slurm_ids_in_rule_logs(wd)
    assert set(seen.values()) == slurm_ids, seen
    # ... and left its Slurm log under .snakemake/slurm_logs
    slurm_logs = {p.stem for p in (wd / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert slurm_ids <= slurm_logs

    # outputs are byte-identical to the local run
    assert tree_files(wd / "results") == tree_files(local_reference / "results")
    # the local run saw no Slurm at all
    assert set(_slurm_ids_in_rule_logs(local_reference).values()) == {""}
    # profiles/slurm keeps the GPU rule on the CPU: device cpu, no GPU in its job step
    assert (wd / "results" / "device.txt").read_text() == "device=cpu\n"
    assert (wd / "logs" / "device.log").read_text().splitlines()[1].startswith("SLURM_GPUS_ON_NODE= ")


DEMO_LIMIT_S = 1500  # timeout(1) bound of the small demo through Slurm (about 930 s in CI, beside the other tests)


@pytest.fixture(scope="module")
def slurm_demo_local(tmp_path_factory):
    """The small demo (``demo_helpers.SLURM_DEMO``) run locally, started in the background on
    one core: ``(run directory, Run)``. The Slurm run spends most of its time waiting on the
    scheduler, so the reference run overlaps it instead of adding its minutes before it; the
    test waits for it before comparing."""
    from demo_helpers import slurm_demo_config

    root = tmp_path_factory.mktemp("slurm_demo_local")
    cfg = slurm_demo_config(root)
    run = start_snakemake(root, ["-s", str(REPO / "Snakefile"), "-d", str(root), "--configfile", str(cfg),
                                 "--cores", "1"], "run.log", DEMO_LIMIT_S)
    yield root, run
    if run.rc is None:
        run.kill_group()


@pytest.mark.slurm
@pytest.mark.slow
def test_demo_through_slurm_equals_local_run(slurm, slurm_demo_local, tmp_path):
    """The offline demo's whole pipeline (every stage of config/demo-ci.yaml, in the smaller
    universe ``demo_helpers.SLURM_DEMO``) through profiles/slurm: every job is a completed
    Slurm job and the results equal the local run's."""
    import numpy as np
    import pandas as pd

    from tasksim.taxonomy import read_similarity

    from demo_helpers import slurm_demo_config

    wd = tmp_path / "demo"
    cfg = slurm_demo_config(wd)
    run = run_snakemake(wd, ["-s", str(REPO / "Snakefile"), "-d", str(wd), "--configfile", str(cfg),
                             *SLURM_ARGS], "run.log", DEMO_LIMIT_S)
    assert run.rc == 0, run.log[-6000:]
    log = SnakemakeLog.parse(run.log)
    non_local = {j for j, (rule, _) in log.jobs.items() if rule != "all"}
    assert len(non_local) > 30 and set(log.submitted) == non_local
    slurm_ids = set(log.submitted.values())
    assert len(slurm_ids) == len(non_local)
    assert set(log.finished) >= non_local
    # Slurm forgets finished jobs after MinJobAge (300 s) and the run takes longer: the jobs it
    # still knows are COMPLETED, and every job left its Slurm log
    states = job_states(slurm_ids)
    assert all(s in ("COMPLETED", None) for s in states.values()), states
    slurm_logs = {p.stem for p in (wd / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert slurm_ids <= slurm_logs
    assert {r for r, _ in log.jobs.values()} >= {"mt_render", "mt_train_encoder", "mt_transfer_source",
                                                 "extract_activations", "rdms", "scores", "summary"}

    local, local_run = slurm_demo_local
    local_run.wait()
    assert local_run.rc == 0, local_run.log[-6000:]
    # identical training: the checkpoints' SHA-256 (part of their file names) match
    for p in sorted((local / "data" / "minitaskonomy" / "encoders").glob("*.sha256")):
        assert (wd / "data" / "minitaskonomy" / "encoders" / p.name).read_text() == p.read_text(), p.name
    a = pd.read_csv(wd / "data" / "minitaskonomy" / "affinity.csv", index_col=0)
    b = pd.read_csv(local / "data" / "minitaskonomy" / "affinity.csv", index_col=0)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    for p in sorted((local / "results" / "similarity").rglob("*.h5")):
        rel = p.relative_to(local)
        np.testing.assert_allclose(read_similarity(wd / rel).matrix.to_numpy(),
                                   read_similarity(p).matrix.to_numpy(), atol=1e-6, err_msg=str(rel))
    ours = pd.read_csv(wd / "results" / "scores" / "summary.csv")
    ref = pd.read_csv(local / "results" / "scores" / "summary.csv")
    np.testing.assert_allclose(ours.estimate.to_numpy(float), ref.estimate.to_numpy(float), atol=1e-6)


@pytest.mark.slurm
def test_failing_job_is_reported_and_run_exits_nonzero(slurm, tmp_path):
    wd = copy_workflow(WORKFLOW, tmp_path / "wf")
    t0 = time.monotonic()
    run = run_snakemake(wd, [*SLURM_ARGS, "--config", "fail=1"], "run.log", FAIL_LIMIT_S)
    elapsed = time.monotonic() - t0
    text = run.log
    # Snakemake ended by itself (124/137 would be timeout(1) killing it) and non-zero
    assert run.rc not in (0, 124, 137), (run.rc, text[-3000:])
    assert elapsed < FAIL_LIMIT_S
    log = SnakemakeLog.parse(text)
    fail_jobs = [j for j, (rule, _) in log.jobs.items() if rule == "fail"]
    assert len(fail_jobs) == 1 and fail_jobs[0] in log.submitted
    sid = log.submitted[fail_jobs[0]]
    assert "Error in rule fail:" in text
    assert f"SLURM-job '{sid}' failed" in text
    assert job_states([sid])[sid] == "FAILED"
    # the job's stderr (in its Slurm log) carries the rule's message
    slurm_log = next((wd / ".snakemake" / "slurm_logs" / "rule_fail").rglob(f"{sid}.log"))
    assert "deliberate failure" in slurm_log.read_text()
    assert not (wd / "results" / "fail.txt").exists()


@pytest.mark.slurm
def test_restart_after_killed_run_runs_only_remaining_jobs(slurm, local_reference, tmp_path):
    wd = copy_workflow(WORKFLOW, tmp_path / "wf")
    # square 0 runs alone first, the others then hold until the release file exists: the run
    # is killed after square 0 finished and while the others hold, whatever the node's CPU
    # count or load; the file is created before the second run
    n = 3
    release = tmp_path / "release"
    cfg = ["--config", f"items={n}", f"hold={release}"]
    run = start_snakemake(wd, [*SLURM_ARGS, *cfg], "run1.log", RUN_LIMIT_S)
    deadline = time.monotonic() + 240
    while True:
        log1 = SnakemakeLog.parse(run.log)
        done_square = [j for j in log1.finished if log1.jobs[j][0] == "square"]
        if done_square:
            break
        assert run.proc.poll() is None, f"run ended early:\n{run.log[-3000:]}"
        assert time.monotonic() < deadline, "no square job finished in time"
        time.sleep(0.5)
    # the scheduler side dies (lost login session): kill its process group ...
    run.kill_group()
    assert run.rc != 0
    # ... and its submitted jobs are cancelled (they would otherwise run on)
    cancel_jobs_in_dir(wd)

    log1 = SnakemakeLog.parse(run.log)
    finished = set(log1.finished)
    finished_out = log1.outputs_of(finished)
    all_square = {f"results/sq/{i}.txt" for i in range(n)}
    assert finished_out & all_square, "the kill came before any square job finished"
    assert all_square - finished_out, "the kill came after all square jobs finished"
    mtimes = {o: (wd / o).stat().st_mtime_ns for o in finished_out}
    release.touch()

    # Snakemake's lock survives SIGKILL: unlock, then re-run the same command
    unlock = run_snakemake(wd, [*SLURM_ARGS, *cfg, "--unlock"], "unlock.log", 60)
    assert unlock.rc == 0, unlock.log[-2000:]
    dry = run_snakemake(wd, [*SLURM_ARGS, *cfg, "-n"], "dry.log", 60)
    assert dry.rc == 0, dry.log[-2000:]
    planned = SnakemakeLog.parse(dry.log)
    run2 = run_snakemake(wd, [*SLURM_ARGS, *cfg], "run2.log", RUN_LIMIT_S)
    assert run2.rc == 0, run2.log[-4000:]
    log2 = SnakemakeLog.parse(run2.log)

    rerun_out = log2.outputs_of(log2.jobs)
    # nothing that had finished is recomputed ...
    assert not (rerun_out & finished_out), rerun_out & finished_out
    assert {o: (wd / o).stat().st_mtime_ns for o in finished_out} == mtimes
    # ... everything else is, exactly as the dry run planned, through Slurm
    assert rerun_out == planned.outputs_of(planned.jobs)
    assert log2.stats_total == len(log2.jobs) < n + n + 1 + 1
    assert set(log2.submitted) == {j for j, (r, _) in log2.jobs.items() if r != "all"}
    assert "results/summary.txt" in rerun_out
    assert all_square - finished_out <= rerun_out

    # and the final result equals an uninterrupted local run of the same config
    ref = copy_workflow(WORKFLOW, tmp_path / "ref")
    loc = run_snakemake(
        ref, ["--profile", str(PROFILES / "default"), "--cores", "2", "--config", f"items={n}"],
        "run.log", 120,
    )
    assert loc.rc == 0, loc.log[-2000:]
    assert tree_files(wd / "results") == tree_files(ref / "results")


@pytest.mark.slurm
def test_gpu_nodes_by_profile_only(slurm, tmp_path):
    """profiles/slurm-gpu alone switches the device to cuda and requests a GPU from Slurm.

    (The CPU counterpart, profiles/slurm, is checked in the first test.)

    .ci/setup-slurm gives the node a GPU GRES (a virtual one where there is no
    real GPU), so the request must be granted, not merely accepted.
    """
    if "gpu" not in subprocess.run(
        ["sinfo", "-h", "-o", "%G"], capture_output=True, text=True
    ).stdout:
        pytest.skip("the Slurm node offers no gpu GRES (TASKSIM_SLURM_GPUS=0?)")
    wd = copy_workflow(WORKFLOW, tmp_path / "wf")
    args = ["--profile", str(PROFILES / "slurm-gpu"), "--workflow-profile", str(PROFILES / "default")]
    run = run_snakemake(wd, [*args, "results/device.txt"], "run.log", RUN_LIMIT_S)
    assert run.rc == 0, run.log[-3000:]
    log = SnakemakeLog.parse(run.log)
    (sid,) = log.submitted.values()
    assert (wd / "results" / "device.txt").read_text() == "device=cuda\n"
    env_line = (wd / "logs" / "device.log").read_text().splitlines()[1]
    # the job step that ran the rule was given the GPU (srun --gpus=1 inside the job)
    assert env_line.startswith("SLURM_GPUS_ON_NODE=1 "), env_line
    shown = subprocess.run(
        ["scontrol", "show", "job", sid], capture_output=True, text=True
    ).stdout
    assert "gres:gpu:1" in shown, shown


# ------------------------------------------------------------- profile consistency (no Slurm)

def _profile(name):
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


def test_gpu_profile_is_slurm_profile_plus_gpu_settings():
    cpu, gpu = _profile("slurm"), _profile("slurm-gpu")
    extra = set(gpu) - set(cpu)
    assert extra == {"set-resources", "config"}
    assert {k: gpu[k] for k in cpu} == cpu
    assert gpu["config"] == {"device": "cuda"}
    assert gpu["set-resources"] and all(r.get("gpu", 0) >= 1 for r in gpu["set-resources"].values())


GPU_RULES = {"extract_activations", "attribution_maps"}  # the pipeline's network rules


@pytest.mark.skipif(not (REPO / "config" / "demo.yaml").exists(), reason="no demo config yet")
@pytest.mark.parametrize("profile, gpu", [("slurm", "0"), ("slurm-gpu", "1")])
def test_gpu_profile_requests_gpus_for_network_rules_only(profile, gpu):
    """Dry run of the real demo DAG from the repository root (no Slurm needed)."""
    assert set(_profile("slurm-gpu")["set-resources"]) == GPU_RULES
    # -n --forceall: list every job of the demo without touching results
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", f"profiles/{profile}",
         "--configfile", "config/demo.yaml", "-n", "--forceall"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=snakemake_env(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = SnakemakeLog.parse(proc.stdout + proc.stderr)
    rules = {rule for rule, _ in log.jobs.values()}
    assert GPU_RULES <= rules, rules
    for j, (rule, _) in log.jobs.items():
        want = gpu if rule in GPU_RULES else "0"
        assert log.resources[j].get("gpu", "0") == want, (rule, log.resources[j])


def test_slurm_profile_settings_needed_without_slurmdbd():
    cpu = _profile("slurm")
    assert cpu["executor"] == "slurm"
    assert cpu["slurm-status-command"] == "squeue"
    assert 0 < cpu["slurm-init-seconds-before-status-checks"] <= 10
    # partition and account are site settings: never hard-wired
    flat = yaml.safe_dump(cpu)
    assert "slurm_partition" not in flat and "slurm_account" not in flat
    for name in ("default", "slurm", "slurm-gpu"):
        res = _profile(name)["default-resources"]
        assert res["mem_mb"] > 0 and res["runtime"] > 0


def test_setup_script_config_has_what_squeue_status_needs():
    text = SETUP_SCRIPT.read_text()
    for needle in (
        "MinJobAge=300", "SelectType=select/cons_tres", "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none", "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none", "ReturnToService=2", "DefMemPerCPU=",
        "munged -F", "/run/munge",
    ):
        assert needle in text, needle
    r = subprocess.run(["bash", "-n", str(SETUP_SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
