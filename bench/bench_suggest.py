"""Colour suggestions at a spot (pix2color.suggest) against the page's own swatches: prints a table.

Protocol (issue 13: "a colour picker, plus the few colours the model finds most likely at that
spot"): each photo of the split is its centre square at 256x256 (the evaluation's truth,
`evaluate.load_test_split`); 10 spots per photo are drawn at random (seeded; 2 px from the
edges). The truth's colour at a spot is the mean ab of its 5x5 patch. A set of swatches "hits"
when at least one swatch's ab is within 10 of the truth's: plain ab distance, i.e. CIE76 ΔE at
equal lightness (a colour point gives only its chroma; the photo keeps its lightness). A swatch's
ab is that of its sRGB hex, the colour the person would give the point. Rows:

- here now: the default model's colour at the spot (the page's `colourAt`: the 5x5 mean of the
  coloured photo), as app.js shows it (`bolder(now, 1)`: lightness held within 45-75);
- here now + bolder: that and its 1.6x, 2.4x and 3.5x versions (app.js `bolder`, reproduced
  here to the constant): the page's swatches before the suggestions;
- likely top-1 / top-3: the suggestions model's most likely distinct colours at the spot
  (`suggest.likely_colours`, k = 3, the page's default);
- here now + likely top-3: the page's swatches with the suggestions;
- here now + bolder + likely top-3: what keeping the bolder ones as well would add.

Columns: the hit rate on all spots, on colourful spots (truth chroma of 20 or more: where a
colour point matters) and the mean distance from the truth to the nearest swatch.

CAVEAT: the suggestions model (models/suggest/colour-classes) was trained before the photos were
split by source: many validation photos were in its training data, so its rows are optimistic.
Use the validation split only; never the test split.

    PYTHONPATH=src python bench/bench_suggest.py --data data/photos
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2color.color.lab import rgb_to_lab
from pix2color.eval.testset import load_test_split
from pix2color.guide.suggest import class_distribution, likely_colors
from pix2color.inference.colorizer import Colorizer
from pix2color.inference.join import small_L
from pix2color.models.io import load_generator, suggestion_model
from pix2color.photo import photo_from_image

SPOTS, MARGIN, HIT = 10, 2, 10.0
COLORFUL = 20.0  # truth chroma from which a spot counts as colourful


# ---- app.js, reproduced: rgbToLab, labToRgb (None outside the screen's colours), bolder
def _srgb_to_linear(v: float) -> float:
    v /= 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _linear_to_srgb(v: float) -> int:
    s = 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    return round(255 * s)  # Math.round: halves up; 255 * s is never exactly .5 here in practice


def js_rgb_to_lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    R, G, B = (_srgb_to_linear(c) for c in rgb)

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    x = f((0.4124564 * R + 0.3575761 * G + 0.1804375 * B) / 0.95047)
    y = f(0.2126729 * R + 0.7151522 * G + 0.072175 * B)
    z = f((0.0193339 * R + 0.119192 * G + 0.9503041 * B) / 1.08883)
    return 116 * y - 16, 500 * (x - y), 200 * (y - z)


def js_lab_to_rgb(lab: tuple[float, float, float]) -> tuple[int, int, int] | None:
    L, a, b = lab
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def inv(t: float) -> float:
        return t**3 if t**3 > 216 / 24389 else (116 * t - 16) / (24389 / 27)

    X, Y, Z = inv(fx) * 0.95047, inv(fy), inv(fz) * 1.08883
    lin = (
        3.2404542 * X - 1.5371385 * Y - 0.4985314 * Z,
        -0.969266 * X + 1.8760108 * Y + 0.041556 * Z,
        0.0556434 * X - 0.2040259 * Y + 1.0572252 * Z,
    )
    if any(v < -0.001 or v > 1.001 for v in lin):
        return None
    r, g, b_ = (_linear_to_srgb(min(1.0, max(0.0, v))) for v in lin)
    return r, g, b_


def js_bolder(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    L0, a, b = js_rgb_to_lab(rgb)
    L = min(75.0, max(45.0, L0))
    k = factor
    while k > 0.5:  # the same float steps as the page's loop
        out = js_lab_to_rgb((L, a * k, b * k))
        if out:
            return out
        k -= 0.1
    out = js_lab_to_rgb((L, 0.0, 0.0))
    assert out is not None
    return out


def ab_of_rgb(colors: list[tuple[int, int, int]]) -> np.ndarray:
    """[(r, g, b)] -> (n, 2) ab (pix2color.color, as the server reads a point's colour)."""
    rgb = np.asarray(colors, np.uint8).reshape(1, -1, 3)
    return rgb_to_lab(rgb)[0, :, 1:]


def hex_rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/photos")
    ap.add_argument("--split", default="val")
    ap.add_argument("--model", default="default", help="the model whose colour the page shows")
    ap.add_argument("--suggest-model", default=None, help="default: the installed one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.split.startswith("test"):
        raise SystemExit("measure on the validation split only (--split val)")

    test, _ = load_test_split(Path(args.data), 256, args.split)
    n = len(test.truth)
    c = Colorizer.from_pretrained(args.model, size=256, backend="torch")
    G, _ = load_generator(args.suggest_model or suggestion_model())
    bins = G.bins.float()
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[float]] = {k: [] for k in ROWS}
    counts: dict[str, list[int]] = {k: [] for k in ROWS}
    chroma: list[float] = []
    t0 = time.perf_counter()
    for gray, truth in zip(test.gray, test.truth, strict=True):
        photo = photo_from_image(Image.fromarray(gray, "L"))
        ab, L_small = c.predict_photos([photo])[0]
        shown = np.asarray(c.join(photo, ab, L_small).convert("RGB"))  # the page's result
        L_work = small_L(photo, 256)
        probs = class_distribution(G, L_work)
        lab_truth = rgb_to_lab(truth)
        for x, y in rng.integers(MARGIN, 256 - MARGIN, size=(SPOTS, 2)):
            patch = np.s_[y - 2 : y + 3, x - 2 : x + 3]
            want = lab_truth[patch][..., 1:].reshape(-1, 2).mean(0)
            chroma.append(float(np.hypot(*want)))
            now = tuple(int(v) for v in np.round(shown[patch].reshape(-1, 3).mean(0)))
            browser = [js_bolder(now, f) for f in (1, 1.6, 2.4, 3.5)]
            L_spot = float(L_work[0, y, x])
            likely = [hex_rgb(s.hex) for s in likely_colors(probs, bins, (256, 256), x, y, L_spot)]
            sets = {
                "here now": browser[:1],
                "here now + bolder (today's page)": browser,
                "likely top-1": likely[:1],
                "likely top-3": likely,
                "here now + likely top-3 (the page now)": browser[:1] + likely,
                "here now + bolder + likely top-3": browser + likely,
            }
            for name, colors in sets.items():
                counts[name].append(len(colors))
                rows[name].append(float(np.linalg.norm(ab_of_rgb(colors) - want, axis=1).min()))
    seconds = time.perf_counter() - t0
    chroma_a = np.asarray(chroma)
    colorful = chroma_a >= COLORFUL
    print(
        f"\n{n} photos of {args.split} x {SPOTS} spots (seed {args.seed}) = {len(chroma)} spots, "
        f"{int(colorful.sum())} colourful (truth chroma >= {COLORFUL:g}); page colour from "
        f"`{args.model}`; {seconds:.0f} s\n"
    )
    print(
        f"| swatches | n (mean) | hit ≤ {HIT:g} (all) | hit (colourful) | mean nearest distance |"
    )
    print("|---|---|---|---|---|")
    for name, d in rows.items():
        d_a = np.asarray(d)
        k = f"{ROWS[name]} ({np.mean(counts[name]):.2f})"
        print(
            f"| {name} | {k} | {100 * (d_a <= HIT).mean():.1f} % | "
            f"{100 * (d_a[colorful] <= HIT).mean():.1f} % | {d_a.mean():.1f} |"
        )


ROWS = {
    "here now": "1",
    "here now + bolder (today's page)": "4",
    "likely top-1": "1",
    "likely top-3": "≤ 3",
    "here now + likely top-3 (the page now)": "≤ 4",
    "here now + bolder + likely top-3": "≤ 7",
}

if __name__ == "__main__":
    main()
