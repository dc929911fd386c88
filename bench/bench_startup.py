"""Start-up: `pix2color --help` and one 1024x768 photo coloured by a whole CLI run, wall time.

    python bench/bench_startup.py [--tree PATH] [--runs 5]

--tree runs the pix2color of another checkout (its src/ first on PYTHONPATH, with this
interpreter): e.g. `git worktree add /tmp/before a287775` for the figures before issue 23.
The model's ONNX twin is made once before timing (a user's first run pays it once). Prints the
median and the spread of --runs runs of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.tree / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "one.jpg"
        gray = Image.fromarray(np.asarray(data.astronaut())).convert("L")
        gray.resize((1024, 768)).save(photo, quality=92)
        cli = [sys.executable, "-m", "pix2color.cli"]
        color = [*cli, "colorize", str(photo), "-o", str(Path(tmp) / "out"), "-q"]
        timed(color, env)  # the ONNX twin is made and cached once
        rows = []
        for label, cmd in (("pix2color --help", [*cli, "--help"]), ("colorize 1024x768", color)):
            t = [timed(cmd, env) for _ in range(args.runs)]
            rows.append((label, statistics.median(t), min(t), max(t)))
    print(f"tree: {args.tree}; {os.cpu_count()} CPUs; {args.runs} runs each")
    print("| command | median s | min s | max s |\n|---|---|---|---|")
    for label, med, lo, hi in rows:
        print(f"| {label} | {med:.2f} | {lo:.2f} | {hi:.2f} |")


if __name__ == "__main__":
    main()
