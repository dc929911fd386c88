"""Tabulate the study's GPU runs (experiments/study_gpu.sh): each run's best validation epoch, the
spread of the baseline recipe over seeds, and the class recipe against its own phase 1.

    python experiments/study_gpu_table.py [runs]      # reads runs/gpu-*/metrics.csv
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path


def best(run: Path) -> dict[str, float] | None:
    f = run / "metrics.csv"
    if not f.is_file():
        return None
    rows = [
        {k: float(v) for k, v in r.items() if v not in ("", "nan")}
        for r in csv.DictReader(f.open())
    ]
    rows = [r for r in rows if "lpips" in r]
    if not rows:
        return None
    b = min(rows, key=lambda r: r["lpips"])
    return {**b, "epochs": len(rows)}


def main(root: str = "runs") -> int:
    runs = {p.name[4:]: best(p) for p in sorted(Path(root).glob("gpu-*"))}
    runs = {k: v for k, v in runs.items() if v}
    if not runs:
        print(f"no runs/gpu-*/metrics.csv under {root}: run experiments/study_gpu.sh on a GPU")
        return 1
    print("| run | epochs | best epoch | val LPIPS | colourfulness (truth) | PSNR (grey) |")
    print("|---|---|---|---|---|---|")
    for name, b in runs.items():
        print(
            f"| {name} | {b['epochs']:.0f} | {b['epoch']:.0f} | {b['lpips']:.4f} | "
            f"{b['cf']:.1f} ({b['cf_truth']:.1f}) | {b['psnr']:.2f} ({b['psnr_grey']:.2f}) |"
        )
    l1 = [b["lpips"] for k, b in runs.items() if k.startswith("l1-s")]
    if len(l1) > 1:
        print(
            f"\nbaseline recipe over {len(l1)} seeds: val LPIPS mean {statistics.mean(l1):.4f}, "
            f"sd {statistics.stdev(l1):.4f}, median {statistics.median(l1):.4f}, "
            f"range {min(l1):.4f}-{max(l1):.4f}"
        )
    for k, b in runs.items():
        if k.startswith("classes-s") and f"l1-{k[8:]}" in runs:
            p = runs[f"l1-{k[8:]}"]
            print(
                f"{k} against its phase 1 (l1-{k[8:]}): LPIPS {b['lpips'] - p['lpips']:+.4f}, "
                f"colourfulness {b['cf'] - p['cf']:+.1f}, PSNR {b['psnr'] - p['psnr']:+.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
