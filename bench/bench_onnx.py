"""ONNX benchmark: torch vs onnxruntime on the CPU, printed as a Markdown table.

- generator: one forward pass on L of 256x256 (the default working size), batch 1.
- colorize: end-to-end latency of `Colorizer` on a 1024x768 grey photo at working size 256; the
  Lab conversions at full resolution are included (torch in both), decoding and encoding are not.

Each model is exported to a temporary folder first. Latency is the median of several runs after a
warm-up, with both backends on the same number of threads (default 2). "max difference" is the
largest |ab_torch - ab_onnx| (ab / 110 units) on the generator's input, and the largest 8-bit
difference of the coloured photos. Run:
`python bench/bench_onnx.py [--models default mobilenet-l1] [--threads 2] [--runs 20]`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def gray_photo(w: int, h: int):
    from PIL import Image
    from skimage import data as skdata

    return Image.fromarray(skdata.coffee()).convert("L").resize((w, h), Image.BICUBIC)


def bench_model(model: str, args: argparse.Namespace, folder: Path) -> list[str]:
    """Export one model and time both backends -> the table's rows for it."""
    from pix2color.inference.colorizer import Colorizer
    from pix2color.models.io import load_generator
    from pix2color.models.onnx_export import OnnxGenerator, export_onnx

    G, info = load_generator(model)
    path = export_onnx(G, folder / f"{Path(model).name}.onnx", metadata=info.get("metadata"))
    onnx_G = OnnxGenerator(path, threads=args.threads)
    mib = path.stat().st_size / 2**20

    px = args.size
    L = torch.rand(1, 1, px, px, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        t_torch = median_ms(lambda: G(L), args.runs)
        t_onnx = median_ms(lambda: onnx_G(L), args.runs)
        dab = (G(L) - onnx_G(L)).abs().max().item()
    rows = [
        f"| {model} | generator ({mib:.1f} MiB .onnx) | {px}x{px} | {t_torch:.1f} ms | "
        f"{t_onnx:.1f} ms | {t_torch / t_onnx:.2f}x | {dab:.1e} in ab |"
    ]

    w, h = (int(v) for v in args.photo.split("x"))
    photo = gray_photo(w, h)
    c_torch, c_onnx = Colorizer(G, size=px), Colorizer(onnx_G, size=px)
    t_torch = median_ms(lambda: c_torch(photo), args.runs)
    t_onnx = median_ms(lambda: c_onnx(photo), args.runs)
    a, b = (np.asarray(c(photo), np.int16) for c in (c_torch, c_onnx))
    rows.append(
        f"| {model} | colorize (working size {px}) | {w}x{h} | {t_torch:.0f} ms | "
        f"{t_onnx:.0f} ms | {t_torch / t_onnx:.2f}x | {np.abs(a - b).max()} levels (8-bit) |"
    )
    return rows


def main() -> None:
    from pix2color.models.io import available_models

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="names or paths (default: every shipped model)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for both backends")
    p.add_argument("--runs", type=int, default=20, help="timed runs per case (after a warm-up)")
    p.add_argument("--size", type=int, default=256, help="working size: generator input side")
    p.add_argument("--photo", default="1024x768", help="WxH of the photo for colorize")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    models = args.models or available_models()
    if not models:
        sys.exit("no shipped models in models/; pass --models NAME_OR_PATH")

    import onnxruntime

    cpu = platform.processor() or platform.machine()
    print(
        f"pix2color ONNX benchmark: torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, {args.threads} CPU threads ({cpu}), "
        f"median of {args.runs} run(s)"
    )
    print()
    print("| model | task | size | torch | onnxruntime | speed-up | max difference |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for row in bench_model(model, args, Path(tmp)):
                print(row)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
