"""The files of an evaluation: report.md, report.json, per_image.csv, charts and sheets.

`write_report_folder` writes them all for an `evaluate.Evaluation`: report.md (the table, notes
and protocol), report.json (every figure), per_image.csv, metrics.png (bar charts),
comparison_NN.png (input | each model | truth) and, if asked, every image scored under
images/<model>/ (truth and grey too, ready for a later `evaluate --pred/--truth` run). An
evaluation with an in-source split (a folder prepared with --split-by source) adds its table
beside the out-of-source one in report.md, its figures under "in_source" in report.json, its
rows (split "test_in") in per_image.csv and comparison_in_NN.png sheets. An evaluation with a
reference (`evaluate --reference`, scored on right halves) adds its table (`reference_table`)
and shows each photo's references in the sheets.
"""

from __future__ import annotations

import csv
import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pix2color.eval.evaluate import GRAY, METRIC_KEYS, Evaluation
from pix2color.eval.testset import TestSet

# (key, table heading, better: "max" / "min" / None, decimals)
COLUMNS = [
    ("psnr", "PSNR (dB) ↑", "max", 2),
    ("ssim", "SSIM ↑", "max", 4),
    ("lpips", "LPIPS ↓", "min", 4),
    ("fid", "FID ↓", "min", 2),
    ("kid", "KID ↓", "min", 5),
    ("colorfulness", "colourfulness", None, 2),
    ("delta_cf", "ΔCF ↓", "min", 2),
    ("ciede2000", "CIEDE2000 ↓", "min", 2),
]


def write_report_folder(evaluation: Evaluation, output: Path, save_images: bool = False) -> None:
    """Write every file of the report to `output`; report.json last, with the sheets' names."""
    report, images = evaluation.report, evaluation.images
    write_report(report, evaluation.per_image, output, in_source=evaluation.in_source)
    write_bar_charts(report["models"], output / "metrics.png")
    report["sheets"] = write_sheets(evaluation.test, images, output, first=evaluation.references)
    if evaluation.in_source is not None:
        inside = evaluation.in_source
        report["in_source"]["sheets"] = write_sheets(
            inside.test, inside.images, output, prefix="comparison_in", first=inside.references
        )
    if save_images:
        test = evaluation.test
        for name, imgs in {"truth": test.truth, **images}.items():
            for stem, im in zip(test.names, imgs, strict=True):
                path = output / "images" / image_folder_name(name) / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(im).save(path)
    (output / "report.json").write_text(json.dumps(report, indent=2) + "\n")


def _fmt(value: float, decimals: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def markdown_table(models: dict[str, dict[str, Any]]) -> str:
    """The metrics as a Markdown table, the best model value of each column in bold."""
    heads = ["model"] + [c[1] for c in COLUMNS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    best = {}
    for key, _, better, _ in COLUMNS:
        values = [m[key] for name, m in models.items() if name != GRAY]
        if better and values:
            best[key] = max(values) if better == "max" else min(values)
    for name, m in models.items():
        cells = [f"{name} (input)" if name == GRAY else name]
        for key, _, _, decimals in COLUMNS:
            cell = _fmt(m[key], decimals)
            if key == "kid":
                cell += f" ± {_fmt(m['kid_std'], decimals)}"
            if key == "fid" and not m["fid_reliable"]:
                cell += "*"
            if key == "kid" and not m.get("kid_reliable", True):
                cell += "†"
            if key == "colorfulness":
                cell += f" (truth {m['colorfulness_truth']:.2f})"
            if name != GRAY and key in best and m[key] == best[key] and len(models) > 2:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gray_lines(evaluation: Evaluation) -> list[str]:
    """One line per model: how far below grey its LPIPS, FID and KID are, in each test split."""
    inside = evaluation.in_source
    return _gray_lines(evaluation.report["models"], inside.report["models"] if inside else None)


def _gray_lines(models: dict[str, dict], in_models: dict[str, dict] | None) -> list[str]:
    splits = [("", models)]
    if in_models is not None:
        splits = [(" out of source", models), (" in source", in_models)]
    lines = []
    for name in models:
        if name == GRAY:
            continue
        parts = []
        for key, label in (("lpips", "LPIPS"), ("fid", "FID"), ("kid", "KID")):
            said = [f"{_versus_gray(models[name][key], models[GRAY][key])}{where}"
                    for where, models in splits]  # fmt: skip
            parts.append(f"{label} {', '.join(said)}")
        lines.append(f"{name} against grey: " + "; ".join(parts))
    return lines


def _versus_gray(value: float, gray: float) -> str:
    """'17% below grey', '3% above grey' (a lower-is-better metric), or the two values."""
    if not gray > 0 or math.isnan(value):  # KID can be 0 or below: no ratio to speak of
        return f"{value:.4g} (grey {gray:.4g})"
    change = (value - gray) / gray
    return f"{abs(change):.0%} {'below' if change < 0 else 'above'} grey"


def write_report(
    report: dict[str, Any], per_image: dict, output: Path, in_source: Evaluation | None = None
) -> None:
    """report.md and per_image.csv (report.json is written last, with the sheets)."""
    output.mkdir(parents=True, exist_ok=True)
    p = report["protocol"]
    lines = ["# pix2color evaluation", ""]
    in_models = in_source.report["models"] if in_source is not None else None
    if in_source is None:
        lines += [f"{report['n']} photos; {p['description']}", "", markdown_table(report["models"])]
    else:
        n_in = in_source.report["n"]
        lines += [
            f"Two test splits, side by side: {p['description']}",
            "",
            f"## Out-of-source test: {report['n']} photos from sources never seen in training",
            "",
            "What users get (their photos come from their own albums), and what models are "
            "compared on.",
            "",
            markdown_table(report["models"]),
            "",
            f"## In-source test: {n_in} photos, held-out scenes of the training sources",
            "",
            "Photos that share their sources' look with training: these figures flatter a model "
            "that has learnt its sources.",
            "",
            markdown_table(in_source.report["models"]),
        ]
    lines += [
        "",
        "↑ higher is better, ↓ lower is better. `grey` is the input itself (no colour): the "
        "floor. Colourfulness (Hasler & Süsstrunk) is neither better nor worse when high: "
        "ΔCF is its distance to the truth's. KID is the mean ± std over subsets.",
        "",
        *(f"- {line}" for line in _gray_lines(report["models"], in_models)),
    ]
    notes = list(report["notes"])
    if in_source is not None:
        notes += [f"In-source test: {note}" for note in in_source.report["notes"]
                  if note not in notes]  # fmt: skip
    if not report["fid_reliable"]:
        lines.append("")
        lines.append("\\* " + notes[0])
        notes = notes[1:]
    for note in notes:
        lines += ["", note]
    if p.get("hints"):
        lines += ["", "## Colour points: quality against the number of points", ""]
        lines += [p["hints"]["description"], "", hints_curve(report["models"], p["hints"])]
    if p.get("reference"):
        lines += ["", "## A reference photo: the photo's own palette from a different crop", ""]
        lines += [p["reference"]["description"], ""]
        if in_source is not None:
            lines += ["Out-of-source test:", ""]
        lines += [reference_table(report["models"], p["reference"])]
        if in_source is not None:
            in_models = in_source.report["models"]
            lines += ["", "In-source test:", "", reference_table(in_models, p["reference"])]
    lines += [
        "",
        "Protocol: RGB in [0, 1]; PSNR and SSIM (Gaussian 11x11, sigma 1.5) on RGB; LPIPS v0.1 "
        f"({p['lpips_net']}) on [-1, 1]; FID/KID on 2048-d TF-InceptionV3 pool features at "
        "299x299 (TF1 bilinear resize), KID paired (an output never counted against its own "
        "truth); CIEDE2000 on CIELAB (D65). Details: the docstring of `pix2color.metrics`.",
        "",
        "Files: report.json (all figures), per_image.csv, metrics.png, comparison_*.png.",
        "",
    ]
    (output / "report.md").write_text("\n".join(lines))
    with (output / "per_image.csv").open("w", newline="") as f:
        w = csv.writer(f)
        keys = ["psnr", "ssim", "lpips", "ciede2000", "colorfulness"]
        w.writerow(["split", "model", "photo", *keys])
        parts = [(p.get("split", "test"), report["photos"], per_image)]
        if in_source is not None:
            parts.append(("test_in", in_source.report["photos"], in_source.per_image))
        for split, photos, per_model in parts:
            for name, per in per_model.items():
                for i, photo in enumerate(photos):
                    w.writerow([split, name, photo, *(f"{per[k][i]:.6g}" for k in keys)])


def hints_curve(models: dict[str, dict[str, Any]], hints: dict[str, Any]) -> str:
    """The --hints curve as a Markdown table: one row per (model, number of points)."""
    keys = [("psnr", "PSNR (dB) ↑", 2), ("lpips", "LPIPS ↓", 4), ("ciede2000", "CIEDE2000 ↓", 2),
            ("colorfulness", "colourfulness", 2), ("kid", "KID ↓", 5)]  # fmt: skip
    lines = ["| model | points | " + " | ".join(k[1] for k in keys) + " | ms/photo |",
             "|---|---|" + "---|" * (len(keys) + 1)]  # fmt: skip
    for model, rows in hints["rows"].items():
        for n, name in rows.items():
            m = models[name]
            cells = [_fmt(m[k], d) for k, _, d in keys]
            ms = m.get("colorize_ms_per_photo")
            lines.append(f"| {model} | {n} | " + " | ".join(cells) + f" | {ms if ms else ''} |")
    return "\n".join(lines)


def reference_table(models: dict[str, dict[str, Any]], reference: dict[str, Any]) -> str:
    """The --reference rows as a Markdown table: per model automatic, own palette, another
    photo's palette (each against automatic), and the grey input, all on the right halves."""
    keys = [("psnr", "PSNR (dB) ↑", 2), ("lpips", "LPIPS ↓", 4), ("ssim", "SSIM ↑", 4),
            ("ciede2000", "CIEDE2000 ↓", 2), ("colorfulness", "colourfulness", 2),
            ("kid", "KID ↓", 5)]  # fmt: skip
    truth_cf = models[GRAY]["colorfulness_truth"]
    heads = [f"{h} (truth {truth_cf:.2f})" if k == "colorfulness" else h for k, h, _ in keys]
    lines = ["| model | colour | " + " | ".join(heads) + " | ΔPSNR vs automatic | ms/photo |",
             "|---|---|" + "---|" * (len(keys) + 2)]  # fmt: skip

    def row(model: str, color: str, m: dict[str, Any], auto: dict[str, Any] | None) -> str:
        cells = [_fmt(m[k], d) for k, _, d in keys]
        delta = f"{m['psnr'] - auto['psnr']:+.2f}" if auto is not None else ""
        ms = m.get("colorize_ms_per_photo") or ""
        return f"| {model} | {color} | " + " | ".join(cells) + f" | {delta} | {ms} |"

    lines.append(row(GRAY, "grey input (the floor)", models[GRAY], None))
    for model, rows in reference["rows"].items():
        auto = models[rows["automatic"]]
        for color, name in rows.items():
            lines.append(row(model, color, models[name], None if name == model else auto))
    return "\n".join(lines)


def write_bar_charts(models: dict[str, dict[str, Any]], path: Path) -> None:
    """One bar chart per metric, every model and the grey baseline side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(models)
    colors = ["0.6" if n == GRAY else f"C{i}" for i, n in enumerate(names)]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (key, title, _, _) in zip(axes.ravel(), COLUMNS, strict=True):
        values = [models[n][key] for n in names]
        errors = [models[n]["kid_std"] for n in names] if key == "kid" else None
        ax.bar(range(len(names)), values, color=colors, yerr=errors, capsize=3)
        if key == "colorfulness":
            ax.axhline(models[names[0]]["colorfulness_truth"], color="k", ls="--", label="truth")
            ax.legend(fontsize=8)
        if key == "fid" and not models[names[0]]["fid_reliable"]:
            title += f" (n={models[names[0]]['n']}: rough)"
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([_short(n) for n in names], rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _label_lines(label: str, width: int) -> list[str]:
    """A column's heading in up to three lines of `width` characters; else its end, shortened."""
    lines = textwrap.wrap(label, width, break_long_words=False)
    return lines if len(lines) <= 3 and max(map(len, lines)) <= width else [_short(label, width)]


def write_sheets(
    test: TestSet,
    images: dict[str, list[np.ndarray]],
    output: Path,
    rows: int = 6,
    sheets: int = 3,
    prefix: str = "comparison",
    first: dict[str, list[np.ndarray]] | None = None,
) -> list[str]:
    """PREFIX_NN.png: [each of `first`, e.g. the references] | input | each model | truth, for
    photos spread over the set; cells as wide and high as the largest image (96 px at least)."""
    n = len(test.names)
    count = min(n, rows * sheets)
    chosen = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
    models = [k for k in images if k != GRAY]
    columns = [*(first or {}).items(), ("input", images[GRAY])]
    columns += [(k, images[k]) for k in models] + [("truth", test.truth)]
    written = []
    for s in range(0, len(chosen), rows):
        picked = chosen[s : s + rows]
        cell_w = max(96, max(imgs[i].shape[1] for i in picked for _, imgs in columns))
        cell_h = max(96, max(imgs[i].shape[0] for i in picked for _, imgs in columns))
        labels = [_label_lines(label, cell_w // 7) for label, _ in columns]
        header = 8 + 14 * max(map(len, labels))
        size = (cell_w * len(columns), header + cell_h * len(picked))
        sheet = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(sheet)
        for c, label in enumerate(labels):
            for line_no, line in enumerate(label):
                draw.text((c * cell_w + 4, 5 + 14 * line_no), line, fill="black")
        for r, i in enumerate(picked):
            y = header + r * cell_h
            for c, (_, imgs) in enumerate(columns):
                img = Image.fromarray(imgs[i])
                scale = min(cell_w / img.width, cell_h / img.height)
                img = img.resize((round(img.width * scale), round(img.height * scale)))
                sheet.paste(img, (c * cell_w, y))
            label = _short(test.names[i], cell_w // 7)
            box = draw.textbbox((4, y + 2), label)
            draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill="black")
            draw.text((4, y + 2), label, fill="white")
        path = output / f"{prefix}_{s // rows + 1:02d}.png"
        sheet.save(path)
        written.append(path.name)
    return written


def write_json(
    models: dict[str, dict[str, Any]], path: Path, in_source: dict[str, dict] | None = None
) -> None:
    """--json FILE: {model (grey included): {METRIC_KEYS..., n, kid_std, fid_reliable, ...}}.

    With an in-source split, each model's entry also holds "in_source": the same keys there.
    """
    extra = ("n", "kid_std", "fid_reliable", "colorfulness_truth")

    def figures(m: dict[str, Any]) -> dict[str, Any]:
        return {k: m[k] for k in (*METRIC_KEYS, *extra)}

    out = {name: figures(m) for name, m in models.items()}
    for name, m in (in_source or {}).items():
        out[name]["in_source"] = figures(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


def image_folder_name(name: str) -> str:
    """A model name (may be a path) -> the folder `--save-images` writes its images to."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"
