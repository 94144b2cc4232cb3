"""Helpers for tests/test_slurm.py: find/start a Slurm, run Snakemake, read its log.

Nothing here is a stand-in for Slurm: every function talks to the real
controller (sinfo/squeue/scancel) or parses a real Snakemake log.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP_SCRIPT = REPO / ".ci" / "setup-slurm"
SLURM_DIR = Path(os.environ.get("TASKSIM_SLURM_DIR", "/tmp/tasksim-slurm"))
PID_FILE = SLURM_DIR / "pids"

# States in which the node can take our jobs.
USABLE = ("idle", "mix", "alloc", "comp")


def _run(cmd, timeout=20, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def node_states() -> list[str]:
    """Compact states of all nodes (e.g. ['idle']), [] if the controller does not answer."""
    try:
        out = _run(["sinfo", "-h", "-N", "-o", "%t"])
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return [s.strip() for s in out.stdout.split() if s.strip()]


def controller_up() -> bool:
    try:
        out = _run(["scontrol", "ping"])
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "is UP" in out.stdout


def wait_for_idle_node(limit_s: float = 60) -> str | None:
    """Wait (bounded) until some node is idle; return its state or None."""
    deadline = time.monotonic() + limit_s
    while True:
        states = node_states()
        idle = [s for s in states if s.startswith("idle") and not s.endswith("*")]
        if idle:
            return idle[0]
        if time.monotonic() > deadline:
            return None
        time.sleep(1)


def recorded_pids() -> list[tuple[str, int]]:
    if not PID_FILE.exists():
        return []
    rows = []
    for line in PID_FILE.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            rows.append((parts[0], int(parts[1])))
    return rows


def stop_pids(rows: list[tuple[str, int]], grace_s: float = 10) -> None:
    """Stop exactly these daemons, by PID, if the PID still names that daemon."""
    for name, pid in reversed(rows):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm != name:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    # drop the stopped rows from the record, keep any others
    if PID_FILE.exists():
        stopped = {pid for _, pid in rows}
        keep = [f"{n} {p}" for n, p in recorded_pids() if p not in stopped]
        PID_FILE.write_text("".join(k + "\n" for k in keep))


def jobs_in_dir(workdir: Path, states: str = "all") -> dict[str, str]:
    """Slurm job id -> state for jobs whose working directory is `workdir`."""
    out = _run(["squeue", "-h", f"--states={states}", "-o", "%i|%T|%Z"])
    assert out.returncode == 0, out.stderr
    res = {}
    for line in out.stdout.splitlines():
        jid, state, wd = line.split("|", 2)
        if Path(wd) == Path(workdir):
            res[jid] = state
    return res


def job_states(ids) -> dict[str, str]:
    """Slurm job id -> state (from squeue --states=all; MinJobAge keeps finished jobs)."""
    out = _run(["squeue", "-h", "--states=all", "-o", "%i|%T"])
    assert out.returncode == 0, out.stderr
    known = dict(line.split("|", 1) for line in out.stdout.splitlines())
    return {i: known.get(i) for i in ids}


def cancel_jobs_in_dir(workdir: Path, limit_s: float = 60) -> list[str]:
    """scancel the still active jobs of `workdir`; wait (bounded) until none is active."""
    active = jobs_in_dir(workdir, states="PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED")
    if active:
        _run(["scancel", *active])
    deadline = time.monotonic() + limit_s
    while jobs_in_dir(workdir, states="PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED"):
        assert time.monotonic() < deadline, f"jobs in {workdir} still active after scancel"
        time.sleep(1)
    return sorted(active)


def snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.pop("SLURM_JOB_ID", None)  # the plugin refuses to submit from inside a job
    return env


@dataclass
class Run:
    proc: subprocess.Popen
    log_path: Path
    started: float
    rc: int | None = None
    elapsed: float | None = None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self) -> "Run":
        self.rc = self.proc.wait()
        self.elapsed = time.monotonic() - self.started
        return self

    def kill_group(self) -> None:
        """SIGKILL the whole process group (timeout + snakemake): a lost login session."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()


def start_snakemake(workdir: Path, args: list[str], log_name: str, limit_s: int) -> Run:
    """Start `timeout -k 10 <limit_s> python -m snakemake <args>` in its own process group."""
    log_path = workdir / log_name
    cmd = ["timeout", "-k", "10", str(limit_s), sys.executable, "-m", "snakemake", *args]
    fh = open(log_path, "w")
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=snakemake_env(), start_new_session=True,
    )
    fh.close()
    return Run(proc, log_path, time.monotonic())


def run_snakemake(workdir: Path, args: list[str], log_name: str, limit_s: int) -> Run:
    return start_snakemake(workdir, args, log_name, limit_s).wait()


def copy_workflow(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ log parsing

_ECHOED_LOG = re.compile(r"^Logfile [^\n]*:\n(=+)\n.*?^\1$\n?", re.M | re.S)
_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n(?P<body>(?:    .*\n)+)", re.M)


@dataclass
class SnakemakeLog:
    """What a Snakemake (9.x) log says about its jobs."""

    jobs: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # jobid -> (rule, outputs)
    resources: dict[int, dict[str, str]] = field(default_factory=dict)  # jobid -> resources line
    submitted: dict[int, str] = field(default_factory=dict)  # jobid -> SLURM jobid
    finished: list[int] = field(default_factory=list)
    stats_total: int | None = None

    @classmethod
    def parse(cls, text: str) -> "SnakemakeLog":
        res = cls()
        # drop the failed jobs' log files that --show-failed-logs echoes: they hold
        # the inner (job-step) Snakemake's own job blocks
        text = _ECHOED_LOG.sub("", text)
        for m in _BLOCK.finditer(text):
            rule, body = m.group(1), m.group("body")
            jid = re.search(r"^    jobid: (\d+)$", body, re.M)
            if not jid:
                continue
            out = re.search(r"^    output: (.*)$", body, re.M)
            outputs = tuple(o.strip() for o in out.group(1).split(",")) if out else ()
            res.jobs[int(jid.group(1))] = (rule, outputs)
            rl = re.search(r"^    resources: (.*)$", body, re.M)
            res.resources[int(jid.group(1))] = dict(
                kv.strip().split("=", 1) for kv in (rl.group(1).split(",") if rl else []) if "=" in kv
            )
        for jid, sid in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text):
            res.submitted[int(jid)] = sid
        res.finished = [int(j) for j in re.findall(r"Finished jobid: (\d+) ", text)]
        tot = re.search(r"^total\s+(\d+)\s*$", text, re.M)
        res.stats_total = int(tot.group(1)) if tot else None
        return res

    def outputs_of(self, jobids) -> set[str]:
        return {o for j in jobids for o in self.jobs[j][1]}

    def rules_of(self, jobids) -> list[str]:
        return sorted(self.jobs[j][0] for j in jobids)


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
