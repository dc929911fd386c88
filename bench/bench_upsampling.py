"""Bilinear against guided upsampling of the colour: LPIPS, FID/KID, CIEDE2000, PSNR.

    python bench/bench_upsampling.py [--data data/photos] [--splits val test] [--model default]
        [--max-side 1024] [--limit 0] [--json FILE]

Candidates: bilinear, guided (radius 2, eps 1e-3) and guided-mild (eps 1e-2). Settings, each
split in turn (experiments/UPSAMPLING.md has the rule that reads these tables):
  A  the photo's 256x256 centre square, coloured at working size 256: nothing is upsampled;
  B  the whole photo (long side <= --max-side) coloured at working size 256, scored whole;
  C  the 256x256 centre crop of B's result against the same crop of the truth.
The rule's verdict is printed for the first split (val: where the choice is made).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from pix2color.color.upsample import GUIDED_EPS, BandColor
from pix2color.data.dataset import centre_square, split_files
from pix2color.eval import evaluate as E
from pix2color.inference import join
from pix2color.inference.colorizer import Colorizer
from pix2color.photo import load_rgb

CANDIDATES = {"bilinear": ("bilinear", GUIDED_EPS), "guided": ("guided", GUIDED_EPS),
              "guided-mild": ("guided", 1e-2)}  # fmt: skip
SIZE = 256
LPIPS_MARGIN, CIEDE_MARGIN = 0.001, 0.01  # experiments/UPSAMPLING.md


@contextmanager
def filter_eps(eps: float):
    """The join's guided filter with this eps while inside."""
    join.BandColor = functools.partial(BandColor, eps=eps)
    try:
        yield
    finally:
        join.BandColor = BandColor


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) -> its central (size, size, 3), no resizing (the whole photo if smaller)."""
    h, w = a.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[y : y + size, x : x + size]


def colour_all(colorizers, gray: list[Image.Image]) -> dict[str, tuple[list[np.ndarray], float]]:
    """{candidate: (its results (H, W, 3) uint8, ms per photo)}."""
    out = {}
    for name, (mode, eps) in CANDIDATES.items():
        t = time.perf_counter()
        with filter_eps(eps):
            images = [np.asarray(colorizers[mode](g).convert("RGB")) for g in gray]
        out[name] = (images, 1000 * (time.perf_counter() - t) / len(gray))
    return out


def score_all(results, truth: list[np.ndarray]) -> dict[str, dict]:
    feats, cf = E.features(truth), E._colorfulness_of(truth)
    rows = {}
    for name, (images, ms) in results.items():
        rows[name] = E.score(images, truth, feats, cf)[0] | {"ms": ms}
    return rows


def eligible(rows: dict[str, dict]) -> list[str]:
    b = rows["bilinear"]
    return [n for n, r in rows.items() if n == "bilinear" or (
        r["fid"] <= b["fid"] and r["kid"] <= b["kid"] and r["lpips"] <= b["lpips"] + LPIPS_MARGIN
    )]  # fmt: skip


def best(rows: dict[str, dict], names: list[str]) -> str:
    """The lowest CIEDE2000 among names; bilinear unless beaten by more than the margin."""
    beat = [n for n in names if rows[n]["ciede2000"] < rows["bilinear"]["ciede2000"] - CIEDE_MARGIN]
    return min(beat, key=lambda n: rows[n]["ciede2000"]) if beat else "bilinear"


def verdict(settings: dict[str, dict[str, dict]]) -> tuple[str, str]:
    """(the choice where nothing is upsampled, the choice where the colour is upsampled)."""
    at_size = best(settings["A"], eligible(settings["A"]))
    both = [n for n in eligible(settings["B"]) if n in eligible(settings["C"])]
    return at_size, best(settings["B"], both)


def table(title: str, rows: dict[str, dict]) -> str:
    lines = [f"{title}\n", "| upsampling | PSNR | LPIPS | FID | KID | CIEDE2000 | ms / photo |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for n, r in rows.items():
        lines.append(
            f"| {n} | {r['psnr']:.3f} | {r['lpips']:.4f} | {r['fid']:.1f} | "
            f"{r['kid'] * 1e3:.2f}e-3 | {r['ciede2000']:.3f} | {r['ms']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def run_split(args, colorizers, split: str) -> dict[str, dict[str, dict]]:
    files = split_files(args.data, split)[: args.limit or None]
    square = [centre_square(load_rgb(f), SIZE) for f in files]
    full = []
    for f in files:
        img = Image.fromarray(load_rgb(f))
        img.thumbnail((args.max_side, args.max_side), Image.Resampling.LANCZOS)
        full.append(np.asarray(img))
    gray = lambda images: [Image.fromarray(a).convert("L") for a in images]  # noqa: E731
    settings = {"A": score_all(colour_all(colorizers, gray(square)), square)}
    b = colour_all(colorizers, gray(full))
    settings["B"] = score_all(b, full)
    crops = {n: ([centre_crop(a, SIZE) for a in im], ms) for n, (im, ms) in b.items()}
    settings["C"] = score_all(crops, [centre_crop(a, SIZE) for a in full])
    names = {"A": f"A: {SIZE}x{SIZE} centre squares, nothing upsampled",
             "B": f"B: whole photos, long side <= {args.max_side}",
             "C": f"C: {SIZE}x{SIZE} centre crops of B"}  # fmt: skip
    print(f"## {split}: {len(files)} photos of {args.data}, model {args.model}\n")
    for k, rows in settings.items():
        print(table(names[k], rows))
    return settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/photos")
    p.add_argument("--splits", nargs="+", default=["val", "test"])
    p.add_argument("--model", default="default")
    p.add_argument("--max-side", type=int, default=1024)
    p.add_argument("--limit", type=int, default=0, help="at most this many photos (0 = all)")
    p.add_argument("--json", help="also write every figure here")
    args = p.parse_args()
    torch.set_num_threads(2)
    colorizers = {m: Colorizer.from_pretrained(args.model, upsampling=m, size=SIZE)
                  for m in ("bilinear", "guided")}  # fmt: skip
    figures = {s: run_split(args, colorizers, s) for s in args.splits}
    at_size, upsampled = verdict(figures[args.splits[0]])
    print(f"The rule on {args.splits[0]}: where nothing is upsampled, {at_size}; where the colour "
          f"is upsampled, {upsampled}.")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "verdict": [at_size, upsampled]}, f, indent=1)


if __name__ == "__main__":
    main()
