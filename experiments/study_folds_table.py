"""The baseline recipe over three folds of held-out sources (issue 12): prints Markdown tables.

`bash experiments/study_folds.sh` trains and scores each fold (out/study-fold{0,1,2}: the test split
coloured at the gain the fold's own validation calibration chose, `model/`, and at gain 1,
`best.pt`, every image saved). This script reads those reports and prints

1. one row per fold and variant: PSNR, LPIPS (and how far under grey's), FID, KID,
   colourfulness against the truth's, CIEDE2000, with grey's figures beside them;
2. the mean and the spread (sample standard deviation, and min to max) over the folds of the
   figures the issue's targets are stated in: LPIPS under grey (%), PSNR over grey (dB), FID and
   KID against grey's, colourfulness against the truth's (%);
3. all test photos of the three folds pooled (each coloured by the fold model that never saw
   its source), scored again with `pix2color evaluate --pred --truth`: FID and KID on about 116
   photos instead of about 39.

    python experiments/study_folds_table.py [--out out] [--no-pooled]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from pix2color.eval.report import image_folder_name

VARIANTS = {"calibrated": "/model", "gain 1": "/best.pt"}
RUNS = {0: "runs/study-mnv2-l1", 1: "runs/study-fold1", 2: "runs/study-fold2"}


def load_fold(out: Path, fold: int) -> dict:
    report = json.loads((out / f"study-fold{fold}" / "report.json").read_text())
    if "models" not in report:
        sys.exit(f"{out}/study-fold{fold}: not scored yet; run bash experiments/study_folds.sh")
    models = report["models"]
    rows = {"grey": models["grey"]}
    for variant, suffix in VARIANTS.items():
        (name,) = [k for k in models if k.endswith(suffix)]
        rows[variant] = {**models[name], "model": name}
    gain = json.loads(Path(RUNS[fold], "model", "config.json").read_text())["config"].get(
        "ab_gain", 1.0
    )
    sources = sorted({p.split("/")[0] for p in report["photos"]})
    return {"n": report["n"], "rows": rows, "gain": gain, "sources": sources}


def relative(row: dict, gray: dict) -> dict[str, float]:
    """The target figures of one row against grey's (and the truth's colourfulness)."""
    return {
        "LPIPS under grey (%)": 100 * (1 - row["lpips"] / gray["lpips"]),
        "PSNR over grey (dB)": row["psnr"] - gray["psnr"],
        "FID minus grey's": row["fid"] - gray["fid"],
        "KID minus grey's": row["kid"] - gray["kid"],
        "colourfulness / truth's (%)": 100 * row["colorfulness"] / row["colorfulness_truth"],
    }


def per_fold_table(folds: dict[int, dict]) -> list[str]:
    lines = [
        "| fold (test photos) | row | PSNR | LPIPS (under grey) | FID | KID | colourfulness "
        "(truth) | CIEDE2000 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, f in folds.items():
        gray = f["rows"]["grey"]
        for variant, r in f["rows"].items():
            label = {"grey": "grey input", "calibrated": f"gain {f['gain']:g} (calibrated on val)",
                     "gain 1": "gain 1"}[variant]  # fmt: skip
            under = 100 * (1 - r["lpips"] / gray["lpips"])
            lines.append(
                f"| {k} ({f['n']}) | {label} | {r['psnr']:.2f} | {r['lpips']:.3f} ({under:.0f} %) "
                f"| {r['fid']:.1f} | {r['kid']:.4f} | {r['colorfulness']:.1f} "
                f"({r['colorfulness_truth']:.1f}) | {r['ciede2000']:.2f} |"
            )
    return lines


def spread_table(folds: dict[int, dict]) -> list[str]:
    lines = ["| row | figure | mean | SD | min to max |", "|---|---|---|---|---|"]
    for variant in VARIANTS:
        per = [relative(f["rows"][variant], f["rows"]["grey"]) for f in folds.values()]
        for figure in per[0]:
            values = [p[figure] for p in per]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            digits = 4 if figure.startswith("KID") else 2
            lines.append(
                f"| {variant} | {figure} | {statistics.fmean(values):.{digits}f} | "
                f"{sd:.{digits}f} | {min(values):.{digits}f} to {max(values):.{digits}f} |"
            )
    return lines


def pooled(out: Path, folds: dict[int, dict]) -> list[str]:
    """Link every fold's saved images into one folder per variant, score each with evaluate."""
    pool = out / "study-folds-pooled"
    lines = []
    for variant in ("truth", *VARIANTS):
        dest = pool / "images" / variant.replace(" ", "")
        for k, f in folds.items():
            model = f["rows"][variant]["model"] if variant in VARIANTS else "truth"
            src = out / f"study-fold{k}" / "images" / image_folder_name(model)
            if not src.is_dir():
                sys.exit(f"{src}: no saved images; run bash experiments/study_folds.sh")
            for path in src.rglob("*.png"):
                target = dest / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(path, target)
    for variant in VARIANTS:
        tag = variant.replace(" ", "")
        report_dir = pool / tag
        if not (report_dir / "report.json").exists():
            subprocess.run(
                [sys.executable, "-m", "pix2color.cli", "evaluate", "--pred",
                 str(pool / "images" / tag), "--truth", str(pool / "images" / "truth"),
                 "-o", str(report_dir), "-q"],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        models = json.loads((report_dir / "report.json").read_text())["models"]
        gray, (row,) = models["grey"], [m for name, m in models.items() if name != "grey"]
        if not lines:
            lines = [
                f"All {gray['n']} test photos of the three folds pooled:",
                "",
                "| row | PSNR | LPIPS (under grey) | FID | KID | colourfulness (truth) "
                "| CIEDE2000 |",
                "|---|---|---|---|---|---|---|",
            ]
            lines.append(_pooled_row("grey input", gray, gray))
        lines.append(_pooled_row(variant, row, gray))
    return lines


def _pooled_row(label: str, r: dict, gray: dict) -> str:
    under = 100 * (1 - r["lpips"] / gray["lpips"])
    return (
        f"| {label} | {r['psnr']:.2f} | {r['lpips']:.3f} ({under:.0f} %) | {r['fid']:.1f} | "
        f"{r['kid']:.4f} | {r['colorfulness']:.1f} ({r['colorfulness_truth']:.1f}) | "
        f"{r['ciede2000']:.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--no-pooled", action="store_true", help="skip the pooled scoring")
    args = ap.parse_args()
    folds = {k: load_fold(args.out, k) for k in RUNS}
    for k, f in folds.items():
        print(f"fold {k}: {f['n']} test photos from {', '.join(f['sources'])}")
    print()
    print("\n".join(per_fold_table(folds)))
    print()
    print("\n".join(spread_table(folds)))
    if not args.no_pooled:
        print()
        print("\n".join(pooled(args.out, folds)))


if __name__ == "__main__":
    main()
