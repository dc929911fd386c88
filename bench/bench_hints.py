"""How long colour points take: network, propagation and full-size join, per photo size.

    PYTHONPATH=src python bench/bench_hints.py [--model default] [--points 10] [--repeat 7]

A grey photo (scikit-image's astronaut, cropped to the aspect and resized) is coloured with
`default` at working size 256 with N colour points at random places. The table gives the
median over --repeat runs of each step, in the process's wall time:
- network: the working-size L and the forward pass (done once per photo; a page that re-colours
  after a new click can keep its result),
- propagation: the points spread over the working-size colour (pix2color.propagate),
- join: the colour brought to full size (guided by L) and joined with the photo's own L,
- re-colouring: propagation + join, what one more point costs; first colouring: all three.
Each cell is wall time (process CPU time in brackets: on a machine shared with other work, the
CPU time is what the step would take on a free CPU; the join uses every CPU, so its CPU time can
exceed its wall time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from pix2color.guide.points import Point
from pix2color.inference.colorizer import Colorizer
from pix2color.photo import photo_from_image


def gray_photo(width: int, height: int) -> Image.Image:
    """scikit-image's astronaut, centre-cropped to width:height, resized, grey."""
    img = Image.fromarray(skdata.astronaut())
    w, h = img.size
    crop_h = min(h, round(w * height / width))
    crop_w = round(crop_h * width / height)
    box = ((w - crop_w) // 2, (h - crop_h) // 2, (w + crop_w) // 2, (h + crop_h) // 2)
    return img.crop(box).resize((width, height), Image.Resampling.LANCZOS).convert("L")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--size", type=int, default=256, help="working size")
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the network")
    p.add_argument("--shapes", nargs="+", default=["1024x768", "256x256"], metavar="WxH")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    c = Colorizer.from_pretrained(args.model, size=args.size)
    rng = np.random.default_rng(0)
    print(
        f"{args.model}, working size {args.size}, {args.points} points, median of {args.repeat}, "
        f"torch threads {args.threads}, {len(os.sched_getaffinity(0))} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("| photo | network | propagation | join | re-colouring | first colouring |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes:
        W, H = (int(v) for v in shape.split("x"))
        photo = photo_from_image(gray_photo(W, H))
        points = [
            Point(float(rng.integers(0, W)), float(rng.integers(0, H)),
                  tuple(int(v) for v in rng.integers(0, 256, 3)), 4.0)
            for _ in range(args.points)
        ]  # fmt: skip
        times: dict[str, list[float]] = {"network": [], "propagation": [], "join": []}
        cpu_times: dict[str, list[float]] = {k: [] for k in times}
        for _ in range(args.repeat + 1):  # the first run warms up and is not counted
            t0, c0 = time.perf_counter(), time.process_time()
            [(ab, s)] = c.predict_photos([photo])
            t1, c1 = time.perf_counter(), time.process_time()
            ab_p = c.apply_points(photo, ab, s, points)
            t2, c2 = time.perf_counter(), time.process_time()
            c.join(photo, ab_p, s)
            t3, c3 = time.perf_counter(), time.process_time()
            for k, t, cpu in zip(times, (t1 - t0, t2 - t1, t3 - t2), (c1 - c0, c2 - c1, c3 - c2),
                                 strict=True):  # fmt: skip
                times[k].append(t)
                cpu_times[k].append(cpu)
        cells = []
        for table in (times, cpu_times):
            med = {k: statistics.median(v[1:]) for k, v in table.items()}
            again = med["propagation"] + med["join"]
            cells.append([med["network"], med["propagation"], med["join"], again,
                          again + med["network"]])  # fmt: skip
        print(f"| {W}x{H} | " + " | ".join(
            f"{1000 * wall:.0f} ms ({1000 * cpu:.0f})" for wall, cpu in zip(*cells, strict=True)
        ) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
