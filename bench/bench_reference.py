"""A reference photo's palette (pix2color.reference) measured on held-out photos: prints a table.

Protocol (issue 13: "another photo of the same scene is rarely available: use the photo's own
palette from a different crop"): each photo of the split is its centre square at 256x256 (the
evaluation's truth, `evaluate.load_test_split`), coloured from its grey version at working size
256 as `pix2color colorize` does. The reference is the truth's LEFT half (256x128, in colour);
every figure is computed on the RIGHT half only, the part the reference does not show, so no
score can come from copying the reference's content. Rows:

- automatic: no reference;
- own palette: the reference is the photo's own left half;
- wrong palette: the reference is the left half of another photo of the split (photo i takes
  photo (i + n/2) mod n's): what a reference that does not match does;
- grey input: the floor.

The protocol's code is `pix2color.evaluate`'s (`WithReference`, `right_half_only`,
`reference_palettes`), the same as `pix2color evaluate --reference`: this script prints its
rows in a short table, with the transfer's cost, and tunes the settings.

`--grid` tunes the transfer's settings (strength, bands, band width, ratio limit): use the
validation split only, never the test split, to choose anything.

    PYTHONPATH=src python bench/bench_reference.py --data data/photos --split val
    PYTHONPATH=src python bench/bench_reference.py --data data/photos --split val --grid
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2color.eval import metrics as M
from pix2color.eval.evaluate import (
    GRAY,
    OTHER,
    OWN,
    WithReference,
    evaluate,
    reference_palettes,
    right_half,
    right_halves,
)
from pix2color.eval.testset import TestSet, load_test_split
from pix2color.guide import reference as R
from pix2color.inference.colorizer import Colorizer
from pix2color.photo import photo_from_image

# the settings --grid tries: (bands, band sigma, ratio limit) x max shift x strength
GRID = [(1, 12.0, 1.5), (4, 16.0, 1.5), (6, 12.0, 1.5), (6, 12.0, 2.0), (10, 8.0, 1.5)]
SHIFTS, STRENGTHS = (10.0, 20.0, 1e9), (0.5, 0.75, 1.0)
ROWS = {
    GRAY: "grey input",
    "auto": "automatic (no reference)",
    "own": "own palette (left half of the photo)",
    "wrong": "wrong palette (another photo's left half)",
}


def quick_scores(pred: list[np.ndarray], truth: list[np.ndarray]) -> dict[str, float]:
    """PSNR, CIEDE2000 and colourfulness of right halves: the grid's cheap figures."""
    p = torch.from_numpy(np.stack(pred)).permute(0, 3, 1, 2).float() / 255.0
    t = torch.from_numpy(np.stack(truth)).permute(0, 3, 1, 2).float() / 255.0
    return {
        "psnr": M.psnr(p, t).mean().item(),
        "ciede2000": M.ciede2000(p, t).mean().item(),
        "colorfulness": M.colorfulness(p).mean().item(),
    }


def grid(c: Colorizer, test: TestSet) -> None:
    """Every setting of GRID x SHIFTS x STRENGTHS, own and wrong palette (val only)."""
    photos = [photo_from_image(Image.fromarray(g, "L")) for g in test.gray]
    predicted = []
    for i in range(0, len(photos), 8):  # the network once; the settings change the transfer only
        predicted += c.predict_photos(photos[i : i + 8])
    right_truth = right_halves(test).truth

    def color(palettes: list | None, **options) -> list[np.ndarray]:
        out = []
        for k, (photo, (ab, s)) in enumerate(zip(photos, predicted, strict=True)):
            if palettes is not None and palettes[k] is not None:
                ab = R.transfer(ab, s, palettes[k], **options)
            out.append(right_half(np.asarray(c.join(photo, ab, s).convert("RGB"))))
        return out

    auto = quick_scores(color(None), right_truth)
    print(f"automatic: PSNR {auto['psnr']:.2f} CIEDE2000 {auto['ciede2000']:.2f}")
    print("| bands | sigma | max ratio | max shift | strength | own PSNR | own CIEDE | own cf "
          "| wrong PSNR | wrong CIEDE | wrong cf |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for bands, sigma, ratio in GRID:
        R.BANDS, R.BAND_SIGMA, R.MAX_RATIO, R.MIN_RATIO = bands, sigma, ratio, 1 / ratio
        own, wrong = reference_palettes(test, OWN), reference_palettes(test, OTHER)
        for R.MAX_SHIFT, strength in itertools.product(SHIFTS, STRENGTHS):
            a = quick_scores(color(own, strength=strength), right_truth)
            b = quick_scores(color(wrong, strength=strength), right_truth)
            print(f"| {bands} | {sigma:g} | {ratio:g} | {R.MAX_SHIFT:g} | {strength:g} | "
                  f"{a['psnr']:.2f} | {a['ciede2000']:.2f} | {a['colorfulness']:.1f} | "
                  f"{b['psnr']:.2f} | {b['ciede2000']:.2f} | {b['colorfulness']:.1f} |",
                  flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/photos")
    ap.add_argument("--split", default="val")
    ap.add_argument("--model", default="default")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--grid", action="store_true", help="tune the settings (val only)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.grid and args.split.startswith("test"):
        raise SystemExit("--grid chooses settings: use --split val, never the test split")

    test, _ = load_test_split(Path(args.data), 256, args.split)
    n = len(test.truth)
    c = Colorizer.from_pretrained(args.model, size=args.size, backend="torch")
    if args.grid:
        grid(c, test)
        return

    t0 = time.perf_counter()
    reference_palettes(test, OWN)
    t_pal = (time.perf_counter() - t0) / n
    rows = {"auto": c, "own": WithReference(c, OWN), "wrong": WithReference(c, OTHER)}
    ev = evaluate(test, rows, protocol={"description": "bench_reference"}, progress=False,
                  right_half_only=True)  # fmt: skip
    models = ev.report["models"]
    print(
        f"\n`{args.model}`, {n} photos of {args.split}, scored on the right halves (256x128); "
        f"settings: bands {R.BANDS}, sigma {R.BAND_SIGMA:g}, ratio {R.MIN_RATIO:g}-"
        f"{R.MAX_RATIO:g}, max shift {R.MAX_SHIFT:g}, strength {R.STRENGTH:g}\n"
    )
    truth_cf = models[GRAY]["colorfulness_truth"]
    print(f"| colour | PSNR (dB) ↑ | LPIPS ↓ | CIEDE2000 ↓ | colourfulness (truth {truth_cf:.2f})")
    print("|---|---|---|---|---|")
    for key, label in ROWS.items():
        s = models[key]
        print(f"| {label} | {s['psnr']:.2f} | {s['lpips']:.4f} | {s['ciede2000']:.2f} | "
              f"{s['colorfulness']:.2f} |")  # fmt: skip
    extra = models["own"]["colorize_ms_per_photo"] - models["auto"]["colorize_ms_per_photo"]
    print(f"\nper photo: palette of a 256x128 reference {1000 * t_pal:.1f} ms; colouring with "
          f"the own palette {extra:+.1f} ms against automatic (256x256)")  # fmt: skip
    # a 1024x768 photo (working size 256x192) and a 1024x768 colour reference: median of 21
    big = Image.fromarray(test.truth[0]).resize((1024, 768), Image.Resampling.BICUBIC)
    ((ab, s),) = c.predict_photos([photo_from_image(big.convert("L"))])
    times = {"palette": [], "transfer": []}
    for _ in range(21):
        t0 = time.perf_counter()
        palette = R.palette_of(np.asarray(big))
        t1 = time.perf_counter()
        R.transfer(ab, s, palette)
        t2 = time.perf_counter()
        times["palette"].append(t1 - t0)
        times["transfer"].append(t2 - t1)
    print(f"1024x768 photo (working size {ab.shape[-1]}x{ab.shape[-2]}), 1024x768 reference, "
          f"median of 21: palette {1000 * np.median(times['palette']):.1f} ms, transfer "
          f"{1000 * np.median(times['transfer']):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
