"""Bilinear against guided upsampling of the colour, on full-size validation photos.

    python bench/bench_upsampling.py [--data data/photos] [--split val] [--model default]

Each photo of the split (long side capped at --max-side) is turned grey and coloured at working
size 256 with each upsampling; the table gives the mean PSNR, CIEDE2000 over the whole photo,
and CIEDE2000 in the band around strong luminance edges (where plain upsampling bleeds colour
across), with the time per photo. The rule that decides between them is in experiments/STUDY.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pix2color.color.lab import rgb_to_lab
from pix2color.color.upsample import UPSAMPLING
from pix2color.data.dataset import split_files
from pix2color.eval.metrics import psnr
from pix2color.inference.colorizer import Colorizer


def edge_band(rgb: torch.Tensor, threshold: float = 0.25, width: int = 3) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (H, W) bool: pixels within `width` of a strong luminance edge."""
    gray = rgb.mean(0, keepdim=True)[None]  # (1, 1, H, W)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3) / 4
    gx = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kx)
    gy = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kx.transpose(2, 3))
    edges = (gx.square() + gy.square()).sqrt() > threshold
    k = 2 * width + 1
    return F.max_pool2d(edges.float(), k, stride=1, padding=width)[0, 0] > 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/photos")
    p.add_argument("--split", default="val")
    p.add_argument("--model", default="default")
    p.add_argument("--max-side", type=int, default=1024)
    p.add_argument("--limit", type=int, default=0, help="at most this many photos (0 = all)")
    args = p.parse_args()
    torch.set_num_threads(2)
    files = split_files(args.data, args.split)[: args.limit or None]
    colorizers = {m: Colorizer.from_pretrained(args.model, upsampling=m) for m in UPSAMPLING}
    rows = {m: {"psnr": [], "de": [], "de_edge": [], "ms": []} for m in UPSAMPLING}
    for path in files:
        img = Image.open(path).convert("RGB")
        img.thumbnail((args.max_side, args.max_side), Image.Resampling.LANCZOS)
        truth = torch.from_numpy(np.asarray(img)).permute(2, 0, 1).float() / 255
        band = edge_band(truth)
        gray = img.convert("L")
        for m, colorizer in colorizers.items():
            t = time.perf_counter()
            out = colorizer(gray)
            rows[m]["ms"].append(1000 * (time.perf_counter() - t))
            pred = torch.from_numpy(np.asarray(out.convert("RGB"))).permute(2, 0, 1).float() / 255
            rows[m]["psnr"].append(psnr(pred[None], truth[None]).item())
            de_map = _ciede_map(pred, truth)
            rows[m]["de"].append(de_map.mean().item())
            rows[m]["de_edge"].append(de_map[band].mean().item() if band.any() else float("nan"))
    print(f"{len(files)} photos of {args.data}/{args.split}, long side <= {args.max_side}, "
          f"model {args.model}, working size 256\n")  # fmt: skip
    print("| upsampling | PSNR | CIEDE2000 | CIEDE2000 near edges | ms / photo |")
    print("|---|---|---|---|---|")
    for m, r in rows.items():
        edge = [v for v in r["de_edge"] if v == v]
        print(
            f"| {m} | {statistics.mean(r['psnr']):.3f} | {statistics.mean(r['de']):.3f} | "
            f"{statistics.mean(edge):.3f} | {statistics.median(r['ms']):.0f} |"
        )


def _ciede_map(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 (H, W) of two (3, H, W) RGB images in [0, 1]."""
    from skimage.color import deltaE_ciede2000

    a = rgb_to_lab(pred.permute(1, 2, 0).numpy())
    b = rgb_to_lab(truth.permute(1, 2, 0).numpy())
    return torch.from_numpy(deltaE_ciede2000(a, b))


if __name__ == "__main__":
    main()
