"""Benchmark of the similarity stage on synthetic Taskonomy-shaped activations.

Writes float16 activation files in the layout of docs/data-layout.md
(``<dir>/<compression>/activations/{model}.h5``, ``/layers/{layer}`` ``[N, C, H, W]``, chunks of
one image) for each HDF5 compression compared (``none``, ``lzf`` + shuffle, ``gzip`` level 1 +
shuffle: the options of ``tasksim.extract``), drops them from the page cache
(fsync + ``posix_fadvise(DONTNEED)``), then times per compression:

* RSA: per model, each of the five layers read whole (float16, ``N x D``), streamed in column
  blocks into a Gram matrix, finalised to an RDM; then one RSA matrix per layer;

and on the first compression only:

* linear CKA on ``encoder_output`` (all pairs);
* SVCCA on ``encoder_output`` in the ``spatial_points`` and ``flatten`` modes (all pairs).

Wall time and peak RSS (``resource.getrusage``, the process maximum so far) are printed per
stage. Layer shapes are those of ``visualpriors.taskonomy_network.TaskonomyEncoder`` (verified by
a forward pass with ``--verify-shapes``). Full size (20 models x 500 images) needs ~23.6 GB of
disk per compression variant; the default is smaller. Example::

    python benchmarks/bench_similarity.py --models 20 --images 500 --compressions lzf
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from tasksim.similarity import compute_similarity
from tasksim.similarity.rsa import accumulate_gram, iter_column_blocks, rdm_from_gram, rsa_matrix

LAYERS: dict[str, tuple[int, int, int]] = {
    "layer1": (256, 32, 32),
    "layer2": (512, 16, 16),
    "layer3": (1024, 16, 16),
    "layer4": (2048, 16, 16),
    "encoder_output": (8, 16, 16),
}

COMPRESSION: dict[str, dict] = {  # as tasksim.extract._compression
    "none": {},
    "lzf": {"compression": "lzf", "shuffle": True},
    "gzip": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
}


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def report(stage: str, seconds: float, extra: str = "") -> None:
    print(f"{stage:<44s} {seconds:8.2f} s   peak RSS {peak_rss_gib():5.2f} GiB   {extra}", flush=True)


def verify_shapes() -> None:
    """Run the Taskonomy encoder once (random weights) and compare the layer shapes."""
    import torch
    from visualpriors.taskonomy_network import TaskonomyEncoder

    enc = TaskonomyEncoder(normalize_outputs=False).eval()
    got: dict[str, tuple[int, ...]] = {}
    modules = {"layer1": enc.layer1, "layer2": enc.layer2, "layer3": enc.layer3, "layer4": enc.layer4,
               "encoder_output": enc.compress1}
    for name, mod in modules.items():
        mod.register_forward_hook(lambda m, i, o, name=name: got.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        enc(torch.zeros(1, 3, 256, 256))
    assert got == LAYERS, got
    print("layer shapes verified against TaskonomyEncoder:", got)


def synth_layer(rng: np.random.Generator, latent: np.ndarray, proj: np.ndarray, shape: tuple[int, ...],
                relu: bool) -> np.ndarray:
    """float16 activations ``[n, *shape]``: image latent (shared part + model part) x projection,
    plus noise, rectified like a ReLU layer (about half zeros, as real activations)."""
    own = rng.standard_normal(latent.shape, dtype=np.float32)
    x = (latent + own) @ proj
    del own
    x += rng.standard_normal(x.shape, dtype=np.float32)
    if relu:
        np.maximum(x, 0, out=x)
    return x.astype(np.float16).reshape(latent.shape[0], *shape)


def write_files(root: Path, compressions: list[str], n_models: int, n_images: int, seed: int) -> dict[str, float]:
    """Write the synthetic activation files; returns bytes on disk per compression."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_images, 16), dtype=np.float32)
    shared = {ly: rng.standard_normal((16, int(np.prod(s))), dtype=np.float32) * 0.25 for ly, s in LAYERS.items()}
    ids = np.array([f"scene_{i:06d}" for i in range(n_images)], dtype=object)
    for comp in compressions:
        (root / comp / "activations").mkdir(parents=True, exist_ok=True)
    for m in range(n_models):
        t0 = time.perf_counter()
        files = {c: h5py.File(root / c / "activations" / f"model{m:02d}.h5", "w") for c in compressions}
        for ly, shape in LAYERS.items():
            proj = shared[ly] + rng.standard_normal(shared[ly].shape, dtype=np.float32) * 0.25
            data = synth_layer(rng, latent, proj, shape, relu=(ly != "encoder_output"))
            del proj
            for c, f in files.items():
                f.create_dataset(f"layers/{ly}", data=data, chunks=(1, *shape), **COMPRESSION[c])
            del data
        for c, f in files.items():
            f.create_dataset("ids", data=ids, dtype=h5py.string_dtype())
            f.attrs["model"] = f"model{m:02d}"
            f.attrs["storage_dtype"] = "float16"
            f.close()
        report(f"write model{m:02d} ({'+'.join(compressions)})", time.perf_counter() - t0)
    sizes = {}
    for c in compressions:
        total = 0
        for p in (root / c / "activations").glob("*.h5"):
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            total += p.stat().st_size
        sizes[c] = total
    return sizes


def model_rdms(path: Path, block_columns: int | None) -> tuple[dict[str, np.ndarray], float, float, int]:
    """RDMs of the five layers of one activation file (one layer in memory at a time), as the
    pipeline's ``rdms`` rule computes them; returns them with read / Gram seconds and bytes read."""
    out: dict[str, np.ndarray] = {}
    t_read = t_gram = 0.0
    nbytes = 0
    with h5py.File(path, "r") as f:
        for ly in LAYERS:
            t = time.perf_counter()
            x = f[f"layers/{ly}"][...]
            t_read += time.perf_counter() - t
            nbytes += x.nbytes
            t = time.perf_counter()
            out[ly] = rdm_from_gram(accumulate_gram(iter_column_blocks(x, block_columns), "center"), "pearson")
            t_gram += time.perf_counter() - t
            del x
    return out, t_read, t_gram, nbytes


def bench_rsa(root: Path, comp: str, n_models: int, block_columns: int | None, workers: int = 1) -> float:
    """All RSA matrices (five layers) from the files of one compression; returns total seconds.

    ``workers > 1``: that many processes with one BLAS thread each, one model per task, as
    Snakemake runs the per-model ``rdms`` jobs on as many cores."""
    paths = [root / comp / "activations" / f"model{m:02d}.h5" for m in range(n_models)]
    t0 = time.perf_counter()
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")  # inherited by the workers
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
                results = list(ex.map(model_rdms, paths, [block_columns] * len(paths)))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    else:
        results = [model_rdms(p, block_columns) for p in paths]
    rdms = {ly: [r[0][ly] for r in results] for ly in LAYERS}
    t_read = sum(r[1] for r in results)
    t_gram = sum(r[2] for r in results)
    nbytes = sum(r[3] for r in results)
    t = time.perf_counter()
    mats = {ly: rsa_matrix(r) for ly, r in rdms.items()}
    t_rsa = time.perf_counter() - t
    total = time.perf_counter() - t0
    report(f"RSA 5 layers [{comp}, {workers} worker(s)]", total,
           f"read {t_read:.1f} s ({nbytes / 2**20 / max(t_read, 1e-9):.0f} MiB/s of float16), "
           f"Gram+RDM {t_gram:.1f} s (summed over workers), rsa_matrix {t_rsa:.2f} s")
    assert all(np.allclose(m, m.T) and np.all(np.diag(m) == 1) for m in mats.values())
    print("    RSA off-diagonal means: " + ", ".join(
        f"{ly} {m[np.triu_indices(n_models, 1)].mean():.3f}" for ly, m in mats.items()), flush=True)
    return total


def read_encoder_output(root: Path, comp: str, n_models: int) -> list[np.ndarray]:
    out = []
    for m in range(n_models):
        with h5py.File(root / comp / "activations" / f"model{m:02d}.h5", "r") as f:
            out.append(f["layers/encoder_output"][...])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--compressions", default="none,lzf,gzip")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_sim"))
    ap.add_argument("--block-columns", type=int, default=None, help="default: ~256 MiB float32 blocks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2,
                    help="also time RSA with this many single-threaded worker processes "
                         "(as the pipeline's parallel rdms jobs)")
    ap.add_argument("--keep-files", action="store_true", help="do not delete --dir at the end")
    ap.add_argument("--reuse-files", action="store_true", help="skip writing (files from --keep-files)")
    ap.add_argument("--verify-shapes", action="store_true")
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}", flush=True)
    comps = [c for c in args.compressions.split(",") if c]
    for c in comps:
        if c not in COMPRESSION:
            ap.error(f"unknown compression {c!r}")
    if args.verify_shapes:
        verify_shapes()
    per_model = sum(int(np.prod(s)) for s in LAYERS.values()) * args.images * 2
    print(f"{args.models} models x {args.images} images, {per_model / 2**30:.2f} GiB float16 per model, "
          f"{args.models * per_model / 2**30:.1f} GiB per compression; threads: numpy BLAS; "
          f"free disk {shutil.disk_usage(args.dir.parent).free / 2**30:.0f} GiB", flush=True)
    try:
        if not args.reuse_files:
            t = time.perf_counter()
            sizes = write_files(args.dir, comps, args.models, args.images, args.seed)
            report("write all", time.perf_counter() - t,
                   ", ".join(f"{c}: {s / 2**30:.2f} GiB ({s / (args.models * per_model):.0%})"
                             for c, s in sizes.items()))
        for c in comps:
            for w in sorted({1, args.workers}):
                bench_rsa(args.dir, c, args.models, args.block_columns, w)
        t = time.perf_counter()
        enc = read_encoder_output(args.dir, comps[0], args.models)
        report("read encoder_output", time.perf_counter() - t)
        n_pairs = args.models * (args.models - 1) // 2
        t = time.perf_counter()
        m, _ = compute_similarity("cka_linear", enc)
        report(f"CKA linear encoder_output ({n_pairs} pairs)", time.perf_counter() - t)
        t = time.perf_counter()
        m, _ = compute_similarity("cka_linear", enc, debiased=True)
        report(f"CKA linear debiased ({n_pairs} pairs)", time.perf_counter() - t)
        for mode in ("spatial_points", "flatten"):
            t = time.perf_counter()
            m, info = compute_similarity("svcca", enc, conv_mode=mode)
            km = info["models"][0]
            report(f"SVCCA {mode} ({n_pairs} pairs)", time.perf_counter() - t,
                   f"n_points {km['n_points']}, kept {km['kept_dims']} (capped: {info['capped']})")
    finally:
        if not args.keep_files:
            shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
