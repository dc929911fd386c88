"""Photos per second colouring a folder: the sequential path against the pipeline.

    python bench/bench_folder.py                   # 50 grey 1024x768 JPEGs, default model
    python bench/bench_folder.py --n 20 --threads 1 2 --repeat 2 --backend torch onnx

The photos are scikit-image's sample photos, cropped to 4:3 and resized to 1024x768, grey,
JPEG quality 90. "sequential" is what `pix2color colorize` did before the pipeline: read a
photo, colour batches (Colorizer.colorize_files), save each result with save_like, one step
after the other. "pipeline" is Colorizer.colorize_folder: a reader thread, the network in the
main thread, a writer thread, bounded queues. Each is run with each torch thread count in the
same process after a warm-up; the best of `--repeat` runs is shown with its CPU use (process
CPU time / wall time: 2.0 means both cores of a 2-core machine busy). The load average
(another process's work) is printed at the start and the end: report it with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "cat", "brick", "grass")


def make_folder(folder: Path, n: int, size: tuple[int, int] = (1024, 768)) -> list[Path]:
    """n grey JPEGs of `size` from scikit-image's photos (cropped to the aspect, resized),
    each a little different (flipped, shifted) so that none is a copy of another."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    W, H = size
    paths = []
    for i in range(n):
        path = folder / f"photo_{i:03d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        img = Image.fromarray(getattr(data, SAMPLES[i % len(SAMPLES)])()).convert("L")
        w, h = img.size
        cw, ch = min(w, h * W // H), min(h, w * H // W)  # the largest W:H crop
        dx = (w - cw) * (i % 3) // 2
        img = img.crop((dx, (h - ch) // 2, dx + cw, (h - ch) // 2 + ch))
        img = img.resize((W, H), Image.Resampling.BICUBIC)
        if i // len(SAMPLES) % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img.save(path, quality=90)
    return paths


def sequential(c, paths: list[Path], out: Path, batch_size: int) -> int:
    from pix2color.photo import save_like

    n = 0
    for path, img, photo, err in c.colorize_files(paths, batch_size=batch_size):
        if err is None:
            save_like(img, photo, out / path.name)
            n += 1
    return n


def pipeline(c, paths: list[Path], out: Path, batch_size: int) -> int:
    from pix2color.photo import save_like

    def save(img, photo):
        return save_like(img, photo, out / photo.path.name)

    return sum(err is None for _, _, err in c.colorize_folder(paths, save, batch_size=batch_size))


def main() -> None:
    from pix2color import Colorizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--code", nargs="+", default=["sequential", "pipeline"])
    ap.add_argument("--backend", nargs="+", default=["torch", "onnx"], help="what runs the network")
    ap.add_argument("--repeat", type=int, default=2, help="runs per case; the fastest is shown")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "pix2color-folder"))
    args = ap.parse_args()

    work = Path(args.work)
    paths = make_folder(work / "in", args.n)
    out = work / "out"
    colorizers = {b: Colorizer.from_pretrained(args.model, backend=b) for b in args.backend}
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPUs "
        f"(this process may use {len(os.sched_getaffinity(0))}), model {args.model}, "
        f"{args.n} grey 1024x768 JPEGs, batch {args.batch_size}; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print()
    print("| code | backend | threads | photos/s | wall | CPU time | CPU use (CPU / wall) |")
    print("|---|---|---|---|---|---|---|")
    for threads, backend, label in itertools.product(args.threads, args.backend, args.code):
        torch.set_num_threads(threads)
        c = colorizers[backend]
        if backend == "onnx":  # the session's threads were fixed when it was made
            c.net = Colorizer.from_pretrained(args.model, backend="onnx").net
        fn = {"sequential": sequential, "pipeline": pipeline}[label]
        fn(c, paths[:4], out, args.batch_size)  # warm-up
        best = None
        for _ in range(args.repeat):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            w0, c0 = time.perf_counter(), time.process_time()
            n = fn(c, paths, out, args.batch_size)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            assert n == len(paths), f"{label}: {n} of {len(paths)} written"
            if best is None or wall < best[0]:
                best = (wall, cpu)
        wall, cpu = best
        print(
            f"| {label} | {backend} | {threads} | {len(paths) / wall:.1f} | {wall:.2f} s "
            f"| {cpu:.2f} s | {cpu / wall:.2f} |",
            flush=True,
        )
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
