"""Speed and memory benchmark: prints a Markdown table.

- colorize: end-to-end latency of `Colorizer` on one grey photo of 256x256, 512x512, 1024x768
  and 2048x2048 px, at the default working size, median of several runs after a warm-up; the
  Lab conversions at full resolution are included, file decoding and encoding are not.
- train: generator + discriminator update steps per second at 256 px crops (the GAN phase:
  D step, then G step; with the ab-class loss for a class-head recipe), batch 16, on random
  tensors (pure compute, no data loading).

Each case runs in its own process so that the peak resident memory (CPU) or peak allocated
memory (CUDA) belongs to that case alone. Run: `make bench` or
`python bench/bench_speed.py [--device cpu|cuda|all] [--models default pix2pix-scratch]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# the original project's generator for scale: the pix2pix reference `unet_256` (54 M parameters)
REFERENCE = "unet_256"


def _model_config(model: str):
    """A recipe's [model] by name; the reference is the default (pix2pix `unet_256`) U-Net."""
    from pix2color.train.config import ModelConfig
    from pix2color.train.recipe import load_config

    return ModelConfig() if model == REFERENCE else load_config(f"configs/{model}.toml").model


def _generator(model: str):
    """The installed model by name, or an untrained generator of the same shape (same speed)."""
    from pix2color.models.io import available_models, load_generator
    from pix2color.train import build_models

    if model in available_models():
        return load_generator(model)[0]
    return build_models(_model_config(model))[0].eval()


def case_colorize(model: str, size: str, device: str, runs: int) -> dict:
    import numpy as np
    from PIL import Image

    from pix2color.inference.colorizer import Colorizer

    colorizer = Colorizer(_generator(model), size=256, device=device)
    rng = np.random.default_rng(0)
    w, h = (int(v) for v in size.split("x"))
    img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
    colorizer(img)  # warm-up
    times = []
    for _ in range(runs):
        _sync(device)
        t = time.perf_counter()
        colorizer(img)
        _sync(device)
        times.append(time.perf_counter() - t)
    return {"ms": 1000 * statistics.median(times), "peak_mb": _peak_mb(device)}


def case_train(model: str, size: str, device: str, runs: int) -> dict:
    from pix2color.color.classes import ColorClassLoss
    from pix2color.models.patchgan import GANLoss
    from pix2color.train import build_models, train_step

    px = int(size.split("x")[0])
    cfg = _model_config(model)
    G, D = build_models(cfg)
    extra = {}
    if cfg.head == "classes":  # speed only: uniform rebalancing weights do the same work
        bins = G.bins
        extra = {"class_loss": ColorClassLoss(bins, torch.ones(len(bins))).to(device),
                 "lambda_class": 1.0}  # fmt: skip
    G.to(device).train()
    D.to(device).train()
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    gan = GANLoss().to(device)
    batch = 16
    L = torch.rand(batch, 1, px, px, device=device) * 2 - 1
    ab = torch.rand(batch, 2, px, px, device=device) - 0.5
    train_step(G, D, opt_g, opt_d, gan, L, ab, **extra)  # warm-up
    _sync(device)
    t = time.perf_counter()
    for _ in range(runs):
        train_step(G, D, opt_g, opt_d, gan, L, ab, **extra)
    _sync(device)
    return {"img_s": batch * runs / (time.perf_counter() - t), "peak_mb": _peak_mb(device)}


def run_case(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="all", help="cpu, cuda or all (cuda only if present)")
    p.add_argument("--models", nargs="+", default=["default", "pix2pix-scratch", REFERENCE])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--case", nargs=4, help=argparse.SUPPRESS)  # KIND MODEL PX DEVICE
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.case:
        kind, model, px, device = args.case
        fn = case_colorize if kind == "colorize" else case_train
        runs = 10 if kind == "colorize" else 3
        if kind == "train" and model == REFERENCE and device == "cpu":
            runs = 1  # 54 M parameters: one step is many seconds on a CPU
        print(json.dumps(fn(model, px, device, runs)))
        return

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""
    print(
        f"pix2color speed benchmark: torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads ({cpu}){gpu}"
    )
    print()
    print("| model | device | task | size | result | peak memory |")
    print("|---|---|---|---|---|---|")
    for device in devices:
        for model in args.models:
            for size in ("256x256", "512x512", "1024x768", "2048x2048"):
                r = run_case(["colorize", model, size, device])
                res = f"{r['ms']:.0f} ms / photo" if "ms" in r else r["error"]
                mem = f"{r['peak_mb']:.0f} MiB" if "peak_mb" in r else "-"
                task = "colorize (working size 256)"
                print(f"| {model} | {device} | {task} | {size} | {res} | {mem} |")
            if not Path(f"configs/{model}.toml").is_file():
                continue  # a shipped model without a recipe of its own name: inference only
            r = run_case(["train", model, "256x256", device])
            res = f"{r['img_s']:.1f} images/s" if "img_s" in r else r["error"]
            mem = f"{r['peak_mb']:.0f} MiB" if "peak_mb" in r else "-"
            print(f"| {model} | {device} | train G+D, batch 16 | 256x256 | {res} | {mem} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
