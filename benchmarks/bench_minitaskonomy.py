"""Benchmark: the full mini-Taskonomy (17 tasks, 64 x 64 scenes) and how well RSA predicts it.

Stages, each timed (wall clock) with the process's peak RSS after it:

1. render the train / transfer / test splits and a probe set (tasksim.scenes);
2. train one encoder per task (tasksim.minitaskonomy.train_encoder);
3. train readouts from every frozen encoder + ``pixels`` + ``random`` to every target and
   AHP-normalise the per-image test losses (tasksim.minitaskonomy.transfer_losses);
4. RSA (tasksim.similarity.rsa: centred features, 1 - Pearson RDMs, Spearman between RDMs) on
   the ``encoder_output`` codes of the probe images, for the trained encoders and for randomly
   initialised ones, scored against the measured affinity: mean per-target Spearman over the 17
   sources (DDS protocol, the target's own entry included, tasksim.scoring.dds_per_target), the
   same without the own entry, and P@1 (most similar other task == best other source).

Usage: python benchmarks/bench_minitaskonomy.py [--n-train 2000] [--n-transfer 500]
       [--n-test 500] [--n-probe 200] [--epochs 4] [--transfer-epochs 5] [--threads 2]
       [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from tasksim import scenes
from tasksim.minitaskonomy import (MINI_TASKS, affinity_frame, build_encoder, train_encoder,
                                   transfer_losses, write_affinity)
from tasksim.minitaskonomy.data import TASK_SPECS, model_input
from tasksim.minitaskonomy.training import encode, save_encoder_checkpoint


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def rsa_frame(codes: dict[str, np.ndarray]) -> pd.DataFrame | None:
    """Task x task RSA matrix of the codes, or None when tasksim.similarity.rsa is missing."""
    try:
        from tasksim.similarity.rsa import rdm, rsa_matrix
    except ImportError:
        return None
    names = list(codes)
    sim = rsa_matrix([rdm(codes[n].reshape(len(codes[n]), -1)) for n in names], "spearman")
    return pd.DataFrame(sim, index=names, columns=names)


def score(sim: pd.DataFrame, aff: pd.DataFrame) -> dict[str, float]:
    """Mean per-target Spearman (own entry included / excluded) and P@1 over the task rows."""
    tasks = list(sim.index)
    with_self, without_self, p1 = [], [], []
    for t in tasks:
        m, g = sim.loc[tasks, t].to_numpy(), aff.loc[tasks, t].to_numpy()
        with_self.append(spearmanr(m, g).statistic)
        keep = np.array([s != t for s in tasks])
        without_self.append(spearmanr(m[keep], g[keep]).statistic)
        others = [s for s in tasks if s != t]
        p1.append(float(sim.loc[others, t].idxmax() == aff.loc[others, t].idxmax()))
    return {"spearman_dds": float(np.mean(with_self)), "spearman_no_self": float(np.mean(without_self)),
            "p_at_1": float(np.mean(p1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-transfer", type=int, default=500)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--n-probe", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--transfer-epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", nargs="*", default=list(MINI_TASKS))
    ap.add_argument("--out", type=Path, default=None, help="write checkpoints and affinity here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    n0 = a.n_train
    train = scenes.render_batch(a.n_train, a.size, a.seed, start=0)
    transfer = scenes.render_batch(a.n_transfer, a.size, a.seed, start=n0)
    test = scenes.render_batch(a.n_test, a.size, a.seed, start=n0 + a.n_transfer)
    probe = scenes.render_batch(a.n_probe, a.size, a.seed + 1)
    times["render"] = time.perf_counter() - t0
    print(f"render      {times['render']:7.1f} s  peak RSS {peak_rss_gb():.2f} GB", flush=True)

    t0 = time.perf_counter()
    encoders = {}
    for i, task in enumerate(a.tasks):
        t1 = time.perf_counter()
        enc, _, hist = train_encoder(task, train, a.epochs, a.seed + i)
        encoders[task] = enc
        if a.out is not None:
            save_encoder_checkpoint(enc, task, a.out / "zoo")
        print(f"  encoder {task:18s} {time.perf_counter() - t1:5.1f} s  loss {hist[0]:.3f} -> "
              f"{hist[-1]:.3f}", flush=True)
    times["encoders"] = time.perf_counter() - t0
    print(f"encoders    {times['encoders']:7.1f} s  peak RSS {peak_rss_gb():.2f} GB", flush=True)

    t0 = time.perf_counter()
    sources, losses = transfer_losses(encoders, transfer, test, a.tasks, a.transfer_epochs, a.seed)
    aff = affinity_frame(losses, sources)
    times["transfers"] = time.perf_counter() - t0
    print(f"transfers   {times['transfers']:7.1f} s  peak RSS {peak_rss_gb():.2f} GB", flush=True)
    if a.out is not None:
        write_affinity(aff, a.out / "affinity.csv", a.out / "all_affinities.pkl")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 3):
        print(aff)
    best = aff.loc[list(a.tasks)].apply(lambda c: c.drop(c.name).idxmax())
    print("best other source per target:", dict(best))

    t0 = time.perf_counter()
    codes = {t: encode(e, model_input(probe, TASK_SPECS[t].input)).numpy() for t, e in encoders.items()}
    sim = rsa_frame(codes)
    if sim is None:
        print("tasksim.similarity.rsa not available: RSA scores skipped")
    else:
        rand_codes = {}
        for i, t in enumerate(a.tasks):
            torch.manual_seed(1000 + a.seed + i)
            rand_codes[t] = encode(build_encoder().eval(), model_input(probe, TASK_SPECS[t].input)).numpy()
        rand = rsa_frame(rand_codes)
        assert rand is not None
        times["rsa"] = time.perf_counter() - t0
        print(f"rsa         {times['rsa']:7.1f} s  peak RSS {peak_rss_gb():.2f} GB")
        print("RSA trained encoders vs affinity:", score(sim, aff))
        print("RSA random encoders  vs affinity:", score(rand, aff))
    print(f"total       {sum(times.values()):7.1f} s  peak RSS {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
