"""Quality on a held-out split: L1 on ab, PSNR and SSIM (RGB), with the grey baseline.

Protocol: each photo of the split (never seen in training) is centre-cropped to a square and
resized to 256x256 (the CenterCrops of validation); the model colours it from its L channel;
metrics compare the result with the true colour photo. The `grey` row is the input itself
(ab = 0): a model must beat it to have learnt anything. Prints a Markdown table.

Run: `python bench/bench_quality.py --data data/photos --split test --models default`
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader

from pix2color.data.dataset import CenterCrops, load_photos, split_files
from pix2color.models.io import load_generator
from pix2color.train import validate


class Grey(nn.Module):
    """The baseline: predicts ab = 0 everywhere, i.e. returns the grey input."""

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return torch.zeros(L.shape[0], 2, *L.shape[2:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/photos")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--models", nargs="+", default=["default"])
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    files = split_files(args.data, args.split)
    photos = load_photos(files, args.size)
    loader = DataLoader(CenterCrops(photos, size=args.size), batch_size=8)
    print(f"{len(photos)} {args.split} photos of {args.data}, centre crop {args.size}x{args.size}")
    print()
    print("| model | L1 (ab/110) | PSNR (dB) | SSIM |")
    print("|---|---|---|---|")
    rows = [("grey (input)", Grey())] + [(m, load_generator(m)[0]) for m in args.models]
    for name, G in rows:
        m, _ = validate(G, loader, torch.device("cpu"))
        print(f"| {name} | {m['val_l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.4f} |")


if __name__ == "__main__":
    main()
