"""The ImageNet encoders of the U-Net colorizer side by side: prints a Markdown table.

For each encoder (models/encoder_unet.ENCODERS): the parameters of the encoder and of the whole
regression U-Net (MobileNetUNet); the GFLOP of one 256x256 photo (torch's FLOP counter, 2 per
multiply-add), the encoder's and the whole U-Net's (the decoder works at higher resolutions and
costs more); the median and the fastest milliseconds of that forward pass on the CPU with 2
threads, no gradients. The encoders take turns run by run, so that load from other processes
falls on all of them alike. Untrained weights: the speed is the same.
Run: `python bench/bench_encoders.py [--runs 20] [--threads 2] [--size 256]`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from pix2color.models.encoder_unet import ENCODERS, MobileNetUNet

# the counter files FLOPs under each called module's name; the decoder's modules are the
# bottleneck, the up steps and the head, the rest (all the other convolutions) is the encoder's
DECODER = re.compile(r"MobileNetUNet\.(bottleneck|ups\.\d+|head)")


def gflop(G: MobileNetUNet, L: torch.Tensor) -> tuple[float, float]:
    """-> (encoder GFLOP, U-Net GFLOP) of one forward pass on L."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(L)
    counts = counter.get_flop_counts()
    decoder = sum(sum(ops.values()) for name, ops in counts.items() if DECODER.fullmatch(name))
    total = counter.get_total_flops()
    return (total - decoder) / 1e9, total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    L = torch.rand(1, 1, args.size, args.size) * 2 - 1  # (1, 1, size, size) in [-1, 1]
    models = {encoder: MobileNetUNet(encoder=encoder).eval() for encoder in ENCODERS}
    times: dict[str, list[float]] = {encoder: [] for encoder in ENCODERS}
    with torch.no_grad():
        for run in range(args.runs + 2):  # the first two rounds warm up
            for encoder, G in models.items():
                t0 = time.perf_counter()
                G(L)
                if run >= 2:
                    times[encoder].append((time.perf_counter() - t0) * 1e3)
    print(f"U-Net (regression head) on one {args.size}x{args.size} photo, CPU, ", end="")
    print(f"{args.threads} threads, {args.runs} runs\n")
    print(
        "| encoder | parameters: encoder / U-Net | GFLOP: encoder / U-Net | ms: median (fastest) |"
    )
    print("|---|---|---|---|")
    for encoder, G in models.items():
        n_encoder = sum(p.numel() for p in G.encoder_parameters()) / 1e6
        n_total = sum(p.numel() for p in G.parameters()) / 1e6
        enc_gflop, total_gflop = gflop(G, L)
        ms = times[encoder]
        print(
            f"| {encoder} | {n_encoder:.2f} M / {n_total:.2f} M | {enc_gflop:.2f} / "
            f"{total_gflop:.2f} | {statistics.median(ms):.0f} ({min(ms):.0f}) |"
        )


if __name__ == "__main__":
    main()
