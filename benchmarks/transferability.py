"""Benchmark of the label-based transferability estimators: a full source x target matrix each.

Synthetic data at the size of the real configuration by default: 20 sources (features of 500
images, 2048-D, with a decaying spectrum like pooled encoder features), 20 targets whose label
kinds follow the Taskonomy tasks (13 dense regression maps with 1 to 3 channels, 2 vector
regressions, 1 dense class map, 2 class targets, 2 dense instance maps), dense labels on the
driver's default grid and quantized into ``--levels`` levels for the class-only estimators
(the costliest reading: without it those estimators skip the float maps). Two sources have a
categorical head (``--head-classes`` classes) for LEEP and NCE.

Each estimator runs :func:`tasksim.transferability.transferability_matrix` over all pairs in
a fresh interpreter (so that memory peaks are its own), with ``--threads`` BLAS / OpenMP threads.
Printed per estimator: wall seconds of the matrix, the number of pairs scored, peak resident
set size of the process (``resource.getrusage``) and the part of it present before the
estimator started (interpreter and data), and whether it meets the targets (all estimators
< 2 min except N-LEEP < 10 min, peak < 4 GiB). Example, and a quick check at a tiny size::

    python benchmarks/transferability.py
    python benchmarks/transferability.py --sources 3 --targets 3 --images 100 --dim 256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ESTIMATOR_ORDER = ("hscore", "shrinkage_hscore", "logme", "leep", "nce", "nleep", "transrate",
                   "gbc", "linear_mse", "parc")
#: Label kinds (and channels / classes) of the targets, in the order they are taken: the mix of
#: the 20 Taskonomy tasks, interleaved so that a few targets already cover every kind.
TARGET_MIX: tuple[tuple[str, int], ...] = (
    ("dense_regression", 1), ("class", 0), ("dense_class", 17), ("vector_regression", 9),
    ("dense_instance", 0), ("dense_regression", 3), ("dense_regression", 2), ("class", 0),
    ("dense_regression", 1), ("vector_regression", 3), ("dense_regression", 3),
    ("dense_instance", 0), ("dense_regression", 1), ("dense_regression", 1),
    ("dense_regression", 3), ("dense_regression", 1), ("dense_regression", 1),
    ("dense_regression", 3), ("dense_regression", 1), ("dense_regression", 2),
)
LIMIT_S = {"nleep": 600.0}
DEFAULT_LIMIT_S = 120.0
LIMIT_GIB = 4.0


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def make_data(args: argparse.Namespace):
    """Seeded synthetic features, heads and targets of the requested size."""
    rng = np.random.default_rng(args.seed)
    n, d = args.images, args.dim
    scale = (1.0 + np.arange(d)) ** -0.5                      # decaying feature spectrum
    latent = rng.normal(size=(n, 8))
    features, heads = {}, {}
    for i in range(args.sources):
        f = rng.normal(size=(n, d)) * scale
        f[:, :8] += latent * (1.0 + i % 3)                    # some shared, label-related signal
        features[f"source{i:02d}"] = f
        if i < args.heads:
            logits = rng.normal(size=(n, args.head_classes))
            logits[:, : latent.shape[1]] += 2 * latent
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            heads[f"source{i:02d}"] = p / p.sum(axis=1, keepdims=True)
    side = args.map_size
    targets = {}
    for j in range(args.targets):
        kind, k = TARGET_MIX[j % len(TARGET_MIX)]
        smooth = latent[:, j % 8, None, None] + 0.5 * rng.normal(size=(n, side, side))
        if kind == "class":
            labels = np.digitize(latent[:, j % 8] + 0.5 * rng.normal(size=n),
                                 np.quantile(latent[:, j % 8], np.linspace(0, 1, args.classes + 1)[1:-1]))
        elif kind == "dense_class":
            labels = np.digitize(smooth, np.linspace(-2, 2, k - 1)).astype(np.int64)
        elif kind == "dense_regression":
            labels = (smooth[..., None] + 0.3 * rng.normal(size=(n, side, side, k))).astype(np.float32)
            labels = labels[..., 0] if k == 1 else labels
        elif kind == "vector_regression":
            labels = (latent[:, :1] + rng.normal(size=(n, k))).astype(np.float32)
        else:
            labels = rng.integers(0, 20, (n, side, side))
        targets[f"target{j:02d}_{kind}"] = (labels, kind)
    return features, heads, targets


def run_one(args: argparse.Namespace) -> dict:
    from threadpoolctl import threadpool_limits

    from tasksim.transferability import transferability_matrix

    t0 = time.perf_counter()
    features, heads, targets = make_data(args)
    data_s, before = time.perf_counter() - t0, peak_rss_gib()
    with threadpool_limits(args.threads):
        t0 = time.perf_counter()
        m = transferability_matrix(features, targets, args.only, heads=heads, grid=args.grid,
                                   levels=args.levels)
        seconds = time.perf_counter() - t0
    return {"estimator": args.only, "seconds": seconds, "data_seconds": data_s,
            "scored": int(np.isfinite(m.to_numpy()).sum()), "pairs": int(m.size),
            "peak_gib": peak_rss_gib(), "before_gib": before}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=20)
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--map-size", type=int, default=32, help="side of the dense label maps")
    ap.add_argument("--grid", type=int, default=None, help="cells per side (default: the driver's)")
    ap.add_argument("--levels", type=int, default=4,
                    help="quantile levels of float labels for class-only estimators (0: none)")
    ap.add_argument("--classes", type=int, default=20, help="classes of the class targets")
    ap.add_argument("--heads", type=int, default=2, help="sources with a categorical head")
    ap.add_argument("--head-classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--estimators", nargs="+", default=list(ESTIMATOR_ORDER))
    ap.add_argument("--only", help=argparse.SUPPRESS)        # child process: one estimator, JSON out
    args = ap.parse_args(argv)
    if args.grid is None:
        from tasksim.transferability import DEFAULT_GRID
        args.grid = DEFAULT_GRID
    args.levels = args.levels or None
    if args.only:
        print(json.dumps(run_one(args)))
        return 0

    kinds = [TARGET_MIX[j % len(TARGET_MIX)][0] for j in range(args.targets)]
    print(f"{args.sources} sources x {args.targets} targets, {args.images} images, {args.dim}-D features, "
          f"{args.map_size}^2 maps on a {args.grid} x {args.grid} grid, levels {args.levels}, "
          f"{args.threads} threads")
    print("target kinds: " + ", ".join(f"{k} {kinds.count(k)}" for k in dict.fromkeys(kinds)))
    print(f"{'estimator':18s} {'seconds':>9s} {'scored':>9s} {'peak GiB':>9s} {'before':>7s}  target")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    child_args = [a for a in (argv if argv is not None else sys.argv[1:])]
    ok = True
    for name in args.estimators:
        proc = subprocess.run([sys.executable, __file__, *child_args, "--only", name], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name:18s} FAILED\n{proc.stderr[-2000:]}", flush=True)
            ok = False
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        limit = LIMIT_S.get(name, DEFAULT_LIMIT_S)
        good = r["seconds"] < limit and r["peak_gib"] < LIMIT_GIB
        ok = ok and good
        print(f"{name:18s} {r['seconds']:9.2f} {r['scored']:4d}/{r['pairs']:<4d} {r['peak_gib']:9.2f} "
              f"{r['before_gib']:7.2f}  {'ok' if good else 'OVER'} (< {limit:.0f} s, < {LIMIT_GIB:.0f} GiB)",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
