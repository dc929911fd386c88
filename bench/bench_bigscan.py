"""Time and peak memory of colouring one big photo, against its size, old code path vs new.

    python bench/bench_bigscan.py                       # 1, 6, 12, 25, 100 MP grey JPEGs
    python bench/bench_bigscan.py --mp 1 12 --kind rgb  # colour JPEGs, fewer sizes
    python bench/bench_bigscan.py --backends onnx       # only onnxruntime

Each case runs in a fresh process: load the model, colour one small photo (warm-up), reset the
peak-RSS counter (Linux: /proc/self/clear_refs), then read, colour and save the big photo as
`pix2color colorize` does (read_photo, Colorizer, save_like), `--repeat` times (the fastest is
shown: the load of a shared machine comes and goes). Peak memory is the VmHWM above that
warmed-up process. Each code runs with each of `--backends` (torch, onnxruntime) where it has
that choice. The older rows run the same script on checkouts of `--before` (default: the last
commit before the banded join, and release 0.3.0) made with `git worktree`, so every code path
is measured in the same run on the same load. The path before banding needs about 120 bytes a
pixel: it is skipped above `--before-max-mp` (default 25) so as not to exhaust the memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# main just before the banded full-resolution join (issue 15), and release 0.3.0
BEFORE = ["a15db1e=before banding", "edff6ae=0.3.0"]

CASE = r"""
import json, sys, time
from pathlib import Path
import torch
from PIL import Image
from pix2color import Colorizer
from pix2color.photo import read_photo, save_like

src, out, model = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
threads, repeat, backend = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.set_num_threads(threads)

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024

# code older than the onnxruntime backend has no `backend` (it is torch)
c = Colorizer.from_pretrained(model, **({} if backend == "-" else {"backend": backend}))
net = [0.0]
predict_ab = c.predict_ab

def timed_predict_ab(L_small):  # the network's own time, to tell it from the full-size work
    t = time.perf_counter()
    ab = predict_ab(L_small)
    net[0] += time.perf_counter() - t
    return ab

c.predict_ab = timed_predict_ab
Image.new("L", (640, 480), 128).save(out.with_name("warm.png"))  # warm-up: all code run
c(out.with_name("warm.png"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM now restarts from the current RSS
idle = hwm()
best = None
for _ in range(repeat):  # the fastest of `repeat` runs: a shared machine's load comes and goes
    net[0] = 0.0
    t0 = time.perf_counter()
    photo = read_photo(src)
    t1 = time.perf_counter()
    img = c.colorize_photo(photo)
    t2 = time.perf_counter()
    save_like(img, photo, out)
    t3 = time.perf_counter()
    run = {"read": t1 - t0, "colour": t2 - t1, "net": net[0], "save": t3 - t2, "total": t3 - t0}
    best = run if best is None or run["total"] < best["total"] else best
    del photo, img
print(json.dumps(dict(best, peak=hwm() - idle)))
"""


def make_photo(folder: Path, mp: float, kind: str) -> Path:
    """A grey (or colour) JPEG of about `mp` megapixels, 4:3: a real photo scaled up, with fine
    texture so that the JPEG is not trivially small."""
    from skimage import data

    W = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    H = int(round(W * 3 / 4))
    path = folder / f"{kind}_{mp:g}mp.jpg"
    if path.exists():
        return path
    img = Image.fromarray(data.astronaut()).resize((W, H), Image.Resampling.BILINEAR)
    if kind == "grey":
        img = img.convert("L")
    noise = Image.effect_noise((W, H), 12).convert(img.mode)  # grain, like a scan's
    Image.blend(img, noise, 0.1).save(path, quality=90)
    return path


def checkout_before(ref: str, folder: Path) -> Path:
    """A detached worktree of `ref` (reused if there); its src/ runs the old code path."""
    tree = folder / f"before-{ref}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
    return tree


def has_backends(tree: Path) -> bool:
    """Whether the code in `tree` can choose torch or onnxruntime (from 0.3.0)."""
    return (tree / "src/pix2color/models/onnx_cache.py").exists()


def run_case(
    tree: Path, photo: Path, model: str, threads: int, repeat: int, out: Path, backend: str
) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    cmd = [sys.executable, "-c", CASE, str(photo), str(out), model, str(threads), str(repeat)]
    cmd.append(backend)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    out.unlink(missing_ok=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mp", type=float, nargs="+", default=[1, 6, 12, 25, 100])
    ap.add_argument("--kind", choices=["grey", "rgb"], default="grey")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest is shown")
    ap.add_argument(
        "--before", nargs="*", default=BEFORE, metavar="REF[=LABEL]",
        help="git refs of older code to measure beside this checkout (none: only this one)",
    )  # fmt: skip
    ap.add_argument("--backends", nargs="+", choices=["torch", "onnx"], default=["torch", "onnx"])
    ap.add_argument("--before-max-mp", type=float, default=25)
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "pix2color-bigscan"))
    args = ap.parse_args()
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # 100 MP is the point here

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    codes = []  # (label, tree)
    for spec in args.before:
        ref, _, label = spec.partition("=")
        codes.append((label or ref, checkout_before(ref, work)))
    codes.append(("this checkout", ROOT))
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} threads, model {args.model}, {args.kind} JPEG "
        f"in and out; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print()
    print(
        "| photo | code | backend | read | colour (of which network) | save | total "
        "| total without network | peak RSS above idle | bytes/pixel |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mp in args.mp:
        photo = make_photo(work, mp, args.kind)
        with Image.open(photo) as im:
            W, H = im.size
        for label, tree in codes:
            unbanded = "class BandColour" not in (tree / "src/pix2color/upsample.py").read_text()
            for backend in args.backends if has_backends(tree) else ["-"]:
                name = f"| {W}x{H} ({mp:g} MP) | {label} | {'torch' if backend == '-' else backend}"
                if unbanded and mp > args.before_max_mp:
                    print(f"{name} | skipped (over --before-max-mp) |||||||")
                    continue
                out = work / f"out_{len(label)}.jpg"
                r = run_case(tree, photo, args.model, args.threads, args.repeat, out, backend)
                if "error" in r:
                    print(f"{name} | failed: {r['error']} |||||||")
                    continue
                print(
                    f"{name} | {r['read']:.2f} s | {r['colour']:.2f} s ({r['net']:.2f} s) | "
                    f"{r['save']:.2f} s | {r['total']:.2f} s | {r['total'] - r['net']:.2f} s | "
                    f"{r['peak'] / 2**20:.0f} MiB | {r['peak'] / (W * H):.0f} |",
                    flush=True,
                )
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"({np.__name__} {np.__version__}; older code from git: {' '.join(args.before)})")


if __name__ == "__main__":
    main()
