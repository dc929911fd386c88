"""Choose the colour points' propagation settings (sigma, pull) on the VALIDATION photos.

    PYTHONPATH=src python experiments/tune_hints.py --data data/photos [--counts 5 20]

Colours each val photo once with `default`, then, for every (sigma, pull) of the grid, spreads
the simulated points of `evaluate --hints` (evaluate.simulated_points) and prints the mean PSNR
per number of points as a table. Never run on the test split: the shipped values
(propagate.SIGMA, PULL) come from this table on val.
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
from pix2color.eval.evaluate import simulated_points
from pix2color.eval.testset import load_test_split
from pix2color.guide.points import to_working
from pix2color.guide.propagate import DIRECT_PIXELS, ITERATIONS, propagate
from pix2color.inference.colorizer import Colorizer
from pix2color.photo import photo_from_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", default="default")
    p.add_argument("--counts", type=int, nargs="+", default=[5, 20])
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.03, 0.05, 0.1])
    p.add_argument("--pulls", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3, 1e-2])
    p.add_argument(
        "--direct-pixels",
        type=int,
        default=DIRECT_PIXELS,
        help="solve directly up to this many pixels (a huge value: the exact solution)",
    )
    p.add_argument("--iterations", type=int, default=ITERATIONS)
    p.add_argument("--limit", type=int, default=0, help="only the first N val photos")
    args = p.parse_args()
    torch.set_num_threads(1)
    test, _ = load_test_split(args.data, 256, "val")
    n = args.limit or len(test.names)
    c = Colorizer.from_pretrained(args.model, size=256)
    photos = [photo_from_image(Image.fromarray(g, "L")) for g in test.gray[:n]]
    predicted = c.predict_photos(photos)
    truth = torch.from_numpy(np.stack(test.truth[:n])).permute(0, 3, 1, 2).float() / 255
    pools = [simulated_points(test.truth[k], max(args.counts), test.names[k]) for k in range(n)]

    def psnr(images) -> float:
        pred = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
        return float(M.psnr(pred, truth).mean())

    auto = psnr(
        [np.asarray(c.join(ph, ab, s)) for ph, (ab, s) in zip(photos, predicted, strict=True)]
    )
    print(
        f"{n} val photos, {args.model}; no points: PSNR {auto:.2f} dB; direct solve up to "
        f"{args.direct_pixels} pixels, then {args.iterations} iterations\n"
    )
    print("| sigma | pull | " + " | ".join(f"N={k}" for k in args.counts) + " | ms/photo |")
    print("|---|---|" + "---|" * (len(args.counts) + 1))
    for sigma, pull in itertools.product(args.sigmas, args.pulls):
        row, spent = [], 0.0
        for k in args.counts:
            images = []
            for ph, (ab, s), pool in zip(photos, predicted, pools, strict=True):
                pts = pool[:k]
                t0 = time.perf_counter()
                centres = to_working(pts, ph.size, tuple(ab.shape[-2:]))
                ab_k = propagate(
                    s,
                    ab,
                    centres,
                    [q.color for q in pts],
                    sigma=sigma,
                    pull=pull,
                    direct_pixels=args.direct_pixels,
                    iterations=args.iterations,
                )
                spent += time.perf_counter() - t0
                images.append(np.asarray(c.join(ph, ab_k, s)))
            row.append(psnr(images))
        ms = 1000 * spent / (n * len(args.counts))
        print(
            f"| {sigma:g} | {pull:g} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {ms:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
