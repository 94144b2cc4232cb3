"""Extraction throughput: the fast path vs the plain approach, side by side, and their agreement.

Plain approach = what a user of visualpriors writes: fp32, NCHW, one image per forward pass.
Fast path = tasksim's default (tasksim.extract.prepare_for_inference + forward_layers): batch norm
folded into the convolutions, bf16 weights under bf16 autocast (Taskonomy's compress1 kept in
fp32), channels_last, batches of --batch-size images.
Both run the same stand-in TaskonomyEncoder (the real architecture; random weights calibrated to
behave like a trained ResNet, tasksim.zoo.random_encoder) on generated indoor scenes, interleaved
in one run so machine load affects both alike. Freed memory stays in the process, as in the
pipeline's rules (tasksim.snakeutils.retain_freed_memory; without it some processes re-fault
their working set every batch and run the int8 path ~30 % slower). Prints img/s, the speed-up,
achieved GFLOP/s (15.2 GFLOP per 256x256 image) and the Spearman correlation of the
encoder_output RDMs.

    python benchmarks/bench_extract.py --images 32 --batch-size 8 --threads 2

Third path, int8 = ``extraction.precision: int8``: the fast path plus static int8 residual
branches in the bottlenecks of layer2-layer4 (tasksim.extract.quantize; residual stream, shortcuts and
additions in floating point), calibrated on the first --calibration-images of the measured
images, as the pipeline does. Its one-off set-up (fold, calibrate, convert) is timed separately
and folded into a whole-job figure for a 500-image probe set.

With --full-int8 it also measures whole-network static int8 (torch.ao FX, x86 engine, every
activation including the residual stream in 8 bits, calibrated on 32 other scenes): faster
still, but its RDMs miss the >= 0.999 agreement with fp32, which is why tasksim keeps the stream
in floating point.

The bf16 speed-up is bounded by the CPU's bf16 throughput relative to fp32: with AVX-512 BF16
only (e.g. AMD Zen 5: vdpbf16ps at twice the fp32 FMA rate) the fast path cannot exceed ~2x the
fp32 *peak*; with AMX tiles (Intel Sapphire Rapids and later) the ratio is far larger. The
script prints which of these the CPU has.
"""
from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

import h5py
import numpy as np
import torch
from scipy.stats import spearmanr

from tasksim.extract import forward_layers, prepare_for_inference
from tasksim.extract.quantize import cpu_has_vnni, int8_qconfig
from tasksim.probe.preprocess import network_input
from tasksim.scenes import render_rgb
from tasksim.similarity.rsa import rdm, upper_triangle
from tasksim.snakeutils import retain_freed_memory
from tasksim.zoo import TASKONOMY_LAYERS, random_encoder, read_state_dict, taskonomy_encoder

GFLOP_PER_IMAGE = 15.2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of both paths")
    ap.add_argument("--weights", help="a Taskonomy encoder checkpoint (official format) instead of "
                    "the stand-in, e.g. to check the agreement on real weights")
    ap.add_argument("--probe", help="a probe HDF5 file (tasksim.probe layout) whose first --images images "
                    "are used instead of generated scenes")
    ap.add_argument("--calibration-images", type=int, default=16, help="int8 path: calibration images")
    ap.add_argument("--full-int8", action="store_true",
                    help="also measure whole-network static int8 (residual stream quantized too)")
    args = ap.parse_args()
    retained = retain_freed_memory()  # as the pipeline's rule scripts do (tasksim.snakeutils.setup)
    torch.set_num_threads(args.threads)
    net = taskonomy_encoder()
    net.load_state_dict(read_state_dict(args.weights) if args.weights else random_encoder(0))
    if args.probe:
        with h5py.File(args.probe, "r") as f:
            imgs = f["images"][:args.images]
    else:
        imgs = render_rgb(args.images, 256, seed=1)
    layers = {"encoder_output": TASKONOMY_LAYERS["encoder_output"]}

    net.eval()
    setup = {"plain": 0.0}
    t = time.perf_counter()
    fast_net = prepare_for_inference(net, layers, "bf16", channels_last=True)
    setup["fast"] = time.perf_counter() - t
    t = time.perf_counter()
    k = args.calibration_images
    calibration = [network_input(imgs[lo:min(k, lo + args.batch_size)], True) for lo in range(0, k, args.batch_size)]
    int8_net = prepare_for_inference(net, layers, "int8", channels_last=True, calibration=calibration)
    setup["int8"] = time.perf_counter() - t

    def plain() -> np.ndarray:
        m = net
        out = []
        for i in range(len(imgs)):
            x = network_input(imgs[i:i + 1], True)
            with torch.no_grad():
                out.append(forward_layers(m, layers, x, "fp32")["encoder_output"])
        return torch.cat(out).reshape(len(imgs), -1).numpy()

    def batched(m: torch.nn.Module, precision: str) -> np.ndarray:
        out = []
        for lo in range(0, len(imgs), args.batch_size):
            x = network_input(imgs[lo:lo + args.batch_size], True, channels_last=True)
            out.append(forward_layers(m, layers, x, precision)["encoder_output"])
        return torch.cat(out).reshape(len(imgs), -1).numpy()

    paths = {"plain": plain, "fast": lambda: batched(fast_net, "bf16"), "int8": lambda: batched(int8_net, "int8")}
    if args.full_int8:
        full_net = static_int8(net, render_rgb(32, 256, seed=7))

        def full_int8() -> np.ndarray:
            out = []
            for lo in range(0, len(imgs), args.batch_size):
                with torch.inference_mode():
                    out.append(full_net(network_input(imgs[lo:lo + args.batch_size], True)))
            return torch.cat(out).reshape(len(imgs), -1).numpy()
        paths["full-int8"] = full_int8
    for fn in paths.values():
        fn()  # warm-up (oneDNN / FBGEMM kernel selection)
    times: dict[str, list[float]] = {k: [] for k in paths}
    feats = {}
    for _ in range(args.rounds):
        for name, fn in paths.items():
            t = time.perf_counter()
            feats[name] = fn()
            times[name].append(time.perf_counter() - t)
    rate = {k: args.images / min(v) for k, v in times.items()}
    reference = upper_triangle(rdm(feats["plain"].astype(np.float64)))
    rho = {k: spearmanr(reference, upper_triangle(rdm(feats[k].astype(np.float64))))[0] for k in paths}
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    isa = ", ".join(f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "none of avx512_bf16/amx"
    print(f"weights: {args.weights or 'stand-in (tasksim.zoo.random_encoder(0))'}; "
          f"images: {args.probe or 'generated scenes'}")
    print(f"images {args.images}, batch {args.batch_size}, threads {args.threads}, best of {args.rounds} rounds")
    print(f"glibc malloc keeps freed memory: {retained}")
    print(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}; bf16 ISA: {isa}")
    print(f"int8: VNNI {'yes (8-bit activations)' if cpu_has_vnni() else 'no (7-bit activations)'}, "
          f"calibrated on {args.calibration_images} images")
    for k in paths:
        print(f"{k:>9}: {rate[k]:6.2f} img/s  {rate[k] * GFLOP_PER_IMAGE:7.1f} GFLOP/s")
    for k in paths:
        if k != "plain":
            print(f"{k:>9}: speed-up over plain {rate[k] / rate['plain']:.2f}x (target >= 3x), "
                  f"encoder_output RDM Spearman vs fp32 {rho[k]:.5f} (target >= 0.999)")
    for k in setup:
        print(f"{k:>9}: set-up {setup[k]:.1f} s; a 500-image job's forward passes incl. set-up "
              f"{setup[k] + 500 / rate[k]:.1f} s")


def static_int8(net: torch.nn.Module, calibration: np.ndarray) -> torch.nn.Module:
    """Whole-network static int8 copy of ``net`` (FX graph mode, x86 engine, tasksim's int8
    qconfig with 8-bit activations everywhere), calibrated on ``calibration`` images."""
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    x = network_input(calibration, True)
    warnings.filterwarnings("ignore", module=r"torch\.ao\.quantization")  # torch.ao deprecation notices
    warnings.filterwarnings("ignore", message=".*_empty_affine_quantized.*|.*quantiz.*deprecat.*")
    prepared = prepare_fx(copy.deepcopy(net).eval(), QConfigMapping().set_global(int8_qconfig(False)), (x[:2],))
    with torch.inference_mode():
        for lo in range(0, len(x), 8):
            prepared(x[lo:lo + 8])
    return convert_fx(prepared)


if __name__ == "__main__":
    main()
