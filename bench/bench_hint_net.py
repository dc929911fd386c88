"""What a guided-colour training step costs on the CPU: the guidance per crop, and one step.

    PYTHONPATH=src python bench/bench_hint_net.py [--data data/photos] [--crops 128 160 224]

The guidance of a HintUNet's training crop (data/dataset.py GuidedCrops: simulated points, their
edge-aware spread and reach, a reference histogram) is computed per crop on the CPU; this
prints its process CPU time per crop beside the plain crop's, and the wall and CPU time of one
optimisation step of HintUNet (made from `default`, batch 8, 160 px, channels-last, 1 thread).
"""

from __future__ import annotations

import argparse
import time

import torch

from pix2color.data.dataset import (
    GuidanceSimulation,
    GuidedCrops,
    RandomCrops,
    load_photos,
    split_files,
)
from pix2color.models import HintUNet
from pix2color.train.setup import init_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/photos")
    ap.add_argument("--crops", type=int, nargs="+", default=[128, 160, 224])
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    photos = load_photos(split_files(args.data, "train")[: args.items * 2], 320)
    print("| crop | crop only (ms CPU) | crop + guidance (ms CPU) |\n|---|---|---|")
    for crop in args.crops:
        plain = RandomCrops(photos, crop=crop, seed=0)
        guided = GuidedCrops(photos, guidance=GuidanceSimulation(), crop=crop, seed=0)
        times = []
        for d in (plain, guided):
            t = time.process_time()
            for i in range(args.items):
                d[i]
            times.append((time.process_time() - t) / args.items * 1000)
        print(f"| {crop} | {times[0]:.0f} | {times[1]:.0f} |")
    G = HintUNet()
    init_generator(G, "src/pix2color/bundled/default")
    G = G.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(G.parameters(), 1e-4)
    data = GuidedCrops(photos, guidance=GuidanceSimulation(), crop=160, seed=0)
    items = [data[i] for i in range(args.batch)]
    L, ab, hints, ref = (torch.stack(x) for x in zip(*items, strict=True))
    L = L.contiguous(memory_format=torch.channels_last)
    for k in range(3):
        t, w = time.process_time(), time.time()
        loss = (G(L, hints, ref) - ab).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {k}: {time.time() - w:.2f} s wall, {time.process_time() - t:.2f} s CPU")


if __name__ == "__main__":
    main()
