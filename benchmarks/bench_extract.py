"""Extraction throughput: the fast path vs the plain approach, side by side, and their agreement.

Plain approach = what a user of visualpriors writes: fp32, NCHW, one image per forward pass.
Fast path = tasksim's default (tasksim.extract.prepare_for_inference + forward_layers): batch norm
folded into the convolutions, bf16 weights under bf16 autocast (Taskonomy's compress1 kept in
fp32), channels_last, batches of --batch-size images.
Both run the same stand-in TaskonomyEncoder (the real architecture; random weights calibrated to
behave like a trained ResNet, tasksim.zoo.random_encoder) on generated indoor scenes, interleaved
in one run so machine load affects both alike. Prints img/s, the speed-up, achieved GFLOP/s
(15.2 GFLOP per 256x256 image) and the Spearman correlation of the encoder_output RDMs.

    python benchmarks/bench_extract.py --images 32 --batch-size 8 --threads 2

With --int8 it also measures static int8 post-training quantization (torch.ao FX, x86 engine:
per-channel symmetric int8 weights, 8-bit per-tensor activations from a histogram observer,
calibrated on 32 other scenes), the one CPU format faster than bf16 on AVX-512 VNNI machines.
tasksim does not use it: its RDMs miss the >= 0.999 agreement with fp32 (see the printed figure).

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

import numpy as np
import torch
from scipy.stats import spearmanr

from tasksim.extract import forward_layers, prepare_for_inference
from tasksim.preprocess import network_input
from tasksim.scenes import render_rgb
from tasksim.similarity.rsa import rdm, upper_triangle
from tasksim.zoo import TASKONOMY_LAYERS, random_encoder, taskonomy_encoder

GFLOP_PER_IMAGE = 15.2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of both paths")
    ap.add_argument("--int8", action="store_true", help="also measure static int8 quantization")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = taskonomy_encoder()
    net.load_state_dict(random_encoder(0))
    imgs = render_rgb(args.images, 256, seed=1)
    layers = {"encoder_output": TASKONOMY_LAYERS["encoder_output"]}

    net.eval()
    fast_net = prepare_for_inference(net, layers, "bf16", channels_last=True)

    def plain() -> np.ndarray:
        m = net
        out = []
        for i in range(len(imgs)):
            x = network_input(imgs[i:i + 1], True)
            with torch.no_grad():
                out.append(forward_layers(m, layers, x, "fp32")["encoder_output"])
        return torch.cat(out).reshape(len(imgs), -1).numpy()

    def fast() -> np.ndarray:
        m = fast_net
        out = []
        for lo in range(0, len(imgs), args.batch_size):
            x = network_input(imgs[lo:lo + args.batch_size], True, channels_last=True)
            out.append(forward_layers(m, layers, x, "bf16")["encoder_output"])
        return torch.cat(out).reshape(len(imgs), -1).numpy()

    paths = {"plain": plain, "fast": fast}
    if args.int8:
        int8_net = static_int8(net, render_rgb(32, 256, seed=7))

        def int8() -> np.ndarray:
            out = []
            for lo in range(0, len(imgs), args.batch_size):
                with torch.inference_mode():
                    out.append(int8_net(network_input(imgs[lo:lo + args.batch_size], True)))
            return torch.cat(out).reshape(len(imgs), -1).numpy()
        paths["int8"] = int8
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
    print(f"images {args.images}, batch {args.batch_size}, threads {args.threads}, best of {args.rounds} rounds")
    print(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}; bf16 ISA: {isa}")
    for k in paths:
        print(f"{k:>5}: {rate[k]:6.2f} img/s  {rate[k] * GFLOP_PER_IMAGE:7.1f} GFLOP/s")
    for k in paths:
        if k != "plain":
            print(f"{k:>5}: speed-up over plain {rate[k] / rate['plain']:.2f}x (target >= 3x), "
                  f"encoder_output RDM Spearman vs fp32 {rho[k]:.5f} (target >= 0.999)")


def static_int8(net: torch.nn.Module, calibration: np.ndarray) -> torch.nn.Module:
    """Static int8 copy of ``net`` (FX graph mode, x86 engine), calibrated on ``calibration`` images."""
    from torch.ao.quantization import HistogramObserver, PerChannelMinMaxObserver, QConfig, QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    qconfig = QConfig(  # full 8-bit activations: VNNI accumulates in int32, so no reduce_range needed
        activation=HistogramObserver.with_args(reduce_range=False, quant_min=0, quant_max=255),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    x = network_input(calibration, True)
    warnings.filterwarnings("ignore", module=r"torch\.ao\.quantization")  # torch.ao deprecation notices
    warnings.filterwarnings("ignore", message=".*_empty_affine_quantized.*|.*quantiz.*deprecat.*")
    prepared = prepare_fx(copy.deepcopy(net).eval(), QConfigMapping().set_global(qconfig), (x[:2],))
    with torch.inference_mode():
        for lo in range(0, len(x), 8):
            prepared(x[lo:lo + 8])
    return convert_fx(prepared)


if __name__ == "__main__":
    main()
