"""Benchmark: attribution maps (saliency + gradient*input + eps-LRP) vs forward-only extraction.

Same TaskonomyEncoder (raw code, ``normalize_outputs=False``), same batch size, 256 x 256 input,
``torch.set_num_threads(2)``. Both paths are timed interleaved in every round (the CPU is shared
with other jobs, so interleaving keeps the comparison fair); the median over rounds is reported.
Variants: fp32 (contiguous), fp32 channels_last, fp32 with batch norm folded into the convolutions
(``folded_for_attribution``), the latter in channels_last (forward only), and bf16 autocast in channels_last
(forward timed; its maps only checked). For every variant the per-image cosine of its maps with the
fp32 maps is printed: a variant is acceptable for attribution only if every cosine is >= 0.999.

Weights: random initialisation with batch-norm statistics calibrated on structured images (so
activations are not degenerate), or a checkpoint given with ``--weights`` (``{'state_dict': ...}``).

Usage: python benchmarks/bench_attribution.py [--batch 4] [--rounds 3] [--weights FILE]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from visualpriors.taskonomy_network import TaskonomyEncoder

from tasksim.similarity.attribution import attribution_maps, folded_for_attribution, per_image_cosine


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Structured images in [-1, 1]: random colour gradients plus smooth Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    imgs = []
    for _ in range(n):
        c = torch.rand(3, 3, generator=g)
        img = c[:, 0, None, None] * xx + c[:, 1, None, None] * yy + 0.3 * c[:, 2, None, None]
        for _ in range(6):
            cy, cx = torch.rand(2, generator=g)
            s = 0.05 + 0.15 * torch.rand(1, generator=g)
            col = torch.rand(3, 1, 1, generator=g) * 2 - 1
            img = img + col * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
        lo, hi = img.amin(), img.amax()
        imgs.append((img - lo) / (hi - lo) * 2 - 1)
    return torch.stack(imgs)


def calibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``images`` (then eval mode)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        nn.Module.train(bn, True)
    with torch.no_grad():
        model(images)
    for bn in bns:
        nn.Module.train(bn, False)


def build_encoder(weights: str | None) -> nn.Module:
    """TaskonomyEncoder with raw outputs: a checkpoint, or random weights with calibrated BN."""
    torch.manual_seed(0)
    enc = TaskonomyEncoder(normalize_outputs=False)
    if weights:
        enc.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["state_dict"])
    else:
        calibrate_batchnorm(enc, smooth_images(8, 256, seed=100))
    return enc


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall-clock seconds, process CPU seconds) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    """Run the interleaved benchmark and print throughput figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)

    base = build_encoder(args.weights)
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    folded = folded_for_attribution(base)
    folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
    x = smooth_images(args.batch, args.size, seed=7)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    # name -> (model, input, autocast dtype, time forward-only, time attribution)
    variants: dict[str, tuple[nn.Module, torch.Tensor, torch.dtype | None, bool, bool]] = {
        "fp32": (base, x, None, True, True),
        "fp32+channels_last": (cl, x_cl, None, True, True),
        "fp32+foldbn": (folded, x, None, True, True),
        "fp32+foldbn+chlast": (folded_cl, x_cl, None, True, True),
        "bf16+channels_last": (cl, x_cl, torch.bfloat16, True, False),
    }

    def forward(model: nn.Module, inp: torch.Tensor, dt: torch.dtype | None) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=dt or torch.bfloat16,
                                                    enabled=dt is not None):
            return model(inp).float()

    # warm-up; also gives the maps compared with fp32 (agreement check, every variant)
    maps = {name: attribution_maps(m, i, autocast_dtype=dt)
            for name, (m, i, dt, _, _) in variants.items()}
    for m, i, dt, _, _ in variants.values():
        forward(m, i, dt)

    times: dict[str, dict[str, list[tuple[float, float]]]] = {n: {"fwd": [], "attr": []}
                                                              for n in variants}
    for _ in range(args.rounds):
        for name, (m, i, dt, do_fwd, do_attr) in variants.items():
            if do_fwd:
                times[name]["fwd"].append(timed(lambda: forward(m, i, dt)))
            if do_attr:
                times[name]["attr"].append(timed(lambda: attribution_maps(m, i, autocast_dtype=dt)))

    print(f"TaskonomyEncoder {args.size}x{args.size}, batch {args.batch}, threads "
          f"{torch.get_num_threads()}, rounds {args.rounds}, weights "
          f"{args.weights or 'random, BN calibrated'}; attribution = saliency+gradxinput+elrp "
          "(1 forward + 2 input-only backward passes)")
    print("img/s from the median and from the best (min) wall time, and from the median process "
          "CPU time x 2 threads (less sensitive to other jobs on the CPU)")
    print(f"{'variant':22s} {'fwd med':>8s} {'attr med':>9s} {'ratio':>6s}   {'fwd min':>8s} "
          f"{'attr min':>9s} {'ratio':>6s}   {'fwd cpu':>8s} {'attr cpu':>9s} {'ratio':>6s}")
    threads = torch.get_num_threads()
    rate: dict[str, dict[str, tuple[float, float]]] = {}
    nan = float("nan")
    for name in variants:
        stats = {}
        for kind, pick in (("med", statistics.median), ("min", min)):
            stats[kind] = tuple(args.batch / pick(w for w, _ in times[name][k]) if times[name][k]
                                else nan for k in ("fwd", "attr"))
        stats["cpu"] = tuple(args.batch * threads / statistics.median(c for _, c in times[name][k])
                             if times[name][k] else nan for k in ("fwd", "attr"))
        rate[name] = stats
        print(f"{name:22s} " + "   ".join(f"{f:8.3f} {a:9.3f} {a / f:6.3f}"
                                            for f, a in stats.values()))
    fp32 = [n for n, v in variants.items() if v[2] is None]
    for kind in ("med", "min", "cpu"):
        best_f = max(fp32, key=lambda n: rate[n][kind][0])
        best_a = max((n for n in fp32 if times[n]["attr"]), key=lambda n: rate[n][kind][1])
        print(f"[{kind}] best fp32 attribution ({best_a}) {rate[best_a][kind][1]:.3f} img/s / best fp32 "
              f"forward ({best_f}) {rate[best_f][kind][0]:.3f} img/s = "
              f"{rate[best_a][kind][1] / rate[best_f][kind][0]:.3f}")
    for name in list(variants)[1:]:
        for method in maps["fp32"]:
            cos = per_image_cosine(maps[name][method], maps["fp32"][method])
            print(f"cosine({name} vs fp32) {method:10s}: min {cos.min():.6f} mean {cos.mean():.6f}")


if __name__ == "__main__":
    main()
