"""Compare colorizers on held-out photos: a metrics table, bar charts and comparison sheets.

Two forms (`register` adds them to the command line as `pix2color evaluate`):

    evaluate --data DIR --models NAME_OR_PATH... --output OUT [--size 256]
    evaluate --pred DIR --truth DIR --output OUT

With --data, the test split of a prepared folder (`data.dataset.split_files(DIR, "test")`) is
the truth: each photo's centre square resized to --size (bicubic, like validation; the protocol
of the published ImageNet comparisons). Its 8-bit grey version (Pillow's "L", Rec. 601 luma) is
what a user would give the colorizer, so each model colours that grey photo through
`Colorizer.colorize_batch`, exactly as `pix2color colorize` does. With --pred/--truth, any two
folders of results are compared as they are, matched by file name without extension (the
path inside the folder), so other tools can be compared the same way.

Every form scores a `grey` row too, the grey input itself as RGB: the floor every model must
beat. The metrics and their protocol are those of `pix2color.metrics` (see its docstring).
Before scoring, --data refuses to run when a test photo is also in the training split (same
file, same pixels, or the same scene by prepare's near-duplicate rule), unless --allow-leakage.

Output folder: report.md, report.json (everything), per_image.csv, metrics.png (bar charts),
comparison_NN.png (input | each model | truth), and with --save-images every image scored
under images/<model>/ (truth and grey too, ready for a later --pred/--truth run).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from pix2color import metrics as M
from pix2color.cli import EXIT_OK, EXIT_USAGE
from pix2color.cli import report_error as _error
from pix2color.data.dataset import centre_square
from pix2color.data.images import IMAGE_EXTENSIONS, ImageError, load_rgb, photo_from_image
from pix2color.data.stats import dhash, hamming, scene_signature

log = logging.getLogger(__name__)

METRIC_KEYS = ("psnr", "ssim", "lpips", "fid", "kid", "colorfulness", "delta_cf", "ciede2000")
GREY = "grey"
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


class EvaluationError(ValueError):
    """An evaluation that cannot run as asked; the message says why and what to do."""


# ---------------------------------------------------------------- the photos
@dataclass
class TestSet:
    """The truth photos of one evaluation, with their grey inputs."""

    names: list[str]  # the path inside the folder, without extension (posix)
    truth: list[np.ndarray]  # (H, W, 3) uint8 RGB
    grey: list[np.ndarray] = field(default_factory=list)  # (H, W) uint8 luma

    def __post_init__(self) -> None:
        if not self.grey:
            self.grey = [np.asarray(Image.fromarray(t).convert("L")) for t in self.truth]


def _name(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


def load_test_split(root: Path, size: int) -> tuple[TestSet, list[Path]]:
    """The test photos of a prepared folder, centre-cropped to size -> (set, their files)."""
    from pix2color.data.dataset import split_files

    files = split_files(root, "test")
    truth = [centre_square(load_rgb(f), size) for f in files]
    names = [_name(f, root / "test") if (root / "test") in f.parents else f.stem for f in files]
    return TestSet(names, truth), files


def _image_files(folder: Path) -> dict[str, Path]:
    """{name without extension: file} of the images under folder; refuses ambiguous names."""
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: no such folder")
    found: dict[str, Path] = {}
    for f in sorted(folder.rglob("*")):
        if not (f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS):
            continue
        key = _name(f, folder)
        if key in found:
            raise EvaluationError(
                f"{folder}: {found[key].name} and {f.name} have the same name; keep one of them"
            )
        found[key] = f
    if not found:
        raise EvaluationError(f"{folder}: no images found")
    return found


def load_pairs(pred_dir: Path, truth_dir: Path) -> tuple[TestSet, list[np.ndarray]]:
    """Two folders matched by file name (without extension) -> (truth set, predictions)."""
    preds, truths = _image_files(pred_dir), _image_files(truth_dir)
    missing = sorted(set(truths) - set(preds))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise EvaluationError(
            f"{pred_dir}: no prediction for {len(missing)} of the {len(truths)} truth photos "
            f"({shown}); predictions are matched to {truth_dir} by file name without extension"
        )
    extra = sorted(set(preds) - set(truths))
    if extra:
        log.warning("%s: %d predictions have no truth photo and are ignored", pred_dir, len(extra))
    names = sorted(truths)
    truth = [load_rgb(truths[n]) for n in names]
    pred = [load_rgb(preds[n]) for n in names]
    for n, p, t in zip(names, pred, truth, strict=True):
        if p.shape != t.shape:
            raise EvaluationError(
                f"{preds[n]}: {p.shape[1]}x{p.shape[0]} but its truth {truths[n]} is "
                f"{t.shape[1]}x{t.shape[0]}; predictions must have their truth's size"
            )
    return TestSet(names, truth), pred


# ---------------------------------------------------------------- leakage guard
@dataclass(frozen=True)
class Leak:
    """A test photo that is also in the training split."""

    test: str
    train: str
    how: str


def _training_photos(root: Path) -> list[dict[str, str]] | None:
    """[{path, sha256, dhash}] of the training split (manifest, else train/), None if none."""
    manifest = root / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("split") == "train"]
        if rows and {"sha256", "dhash"} <= set(rows[0]):
            return [{"path": r["path"], "sha256": r["sha256"], "dhash": r["dhash"]} for r in rows]
    folder = root / "train"
    if not folder.is_dir():
        return None
    out = []
    for f in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        try:
            rgb = load_rgb(f)
        except ImageError as e:
            log.warning("leakage check: skipping %s", e)
            continue
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        out.append(
            {"path": f.relative_to(root).as_posix(), "sha256": sha, "dhash": f"{dhash(rgb):016x}"}
        )
    return out


def find_leaks(root: Path, test_files: list[Path]) -> list[Leak] | None:
    """Test photos also in the training split of a prepared folder; None if it has no train split.

    A leak is the same file (sha256), the same decoded pixels, or the same scene by prepare's
    rule: dHash within DUP_HAMMING bits, aspect within DUP_ASPECT and 16x16 thumbnails that
    correlate at SCENE_CORRELATION or more (the rule that keeps a scene in one split).
    """
    from pix2color.data.prepare import DUP_ASPECT, DUP_HAMMING, SCENE_CORRELATION

    train = _training_photos(root)
    if train is None:
        return None
    by_sha = {r["sha256"]: r["path"] for r in train}
    decoded: dict[str, np.ndarray | None] = {}

    def train_rgb(rel: str) -> np.ndarray | None:
        if rel not in decoded:
            try:
                decoded[rel] = load_rgb(root / rel)
            except ImageError:
                decoded[rel] = None  # listed but unreadable: only its hashes can be compared
        return decoded[rel]

    leaks = []
    for f in test_files:
        test_rel = f.relative_to(root).as_posix() if root in f.parents else str(f)
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        if sha in by_sha:
            leaks.append(Leak(test_rel, by_sha[sha], "same file"))
            continue
        rgb = load_rgb(f)
        h = dhash(rgb)
        for r in train:
            if hamming(h, int(r["dhash"], 16)) > DUP_HAMMING:
                continue
            other = train_rgb(r["path"])
            if other is None:
                continue
            if other.shape == rgb.shape and np.array_equal(other, rgb):
                leaks.append(Leak(test_rel, r["path"], "same pixels"))
                break
            aspect = (rgb.shape[1] / rgb.shape[0]) / (other.shape[1] / other.shape[0])
            corr = float(scene_signature(rgb) @ scene_signature(other))
            if abs(aspect - 1) <= DUP_ASPECT and corr >= SCENE_CORRELATION:
                leaks.append(Leak(test_rel, r["path"], f"same scene (correlation {corr:.2f})"))
                break
    return leaks


def _leak_message(leaks: list[Leak]) -> str:
    shown = "; ".join(f"{x.test} = {x.train} ({x.how})" for x in leaks[:10])
    more = f"; and {len(leaks) - 10} more" if len(leaks) > 10 else ""
    return f"{len(leaks)} test photo(s) are also in the training split: {shown}{more}"


# ---------------------------------------------------------------- scoring
def _tensor(images: list[np.ndarray]) -> torch.Tensor:
    """[(H, W, 3) uint8] of one size -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def _same_size_batches(n: int, shapes: list[tuple], batch: int) -> list[range]:
    """Consecutive index ranges of at most `batch` images that share one shape."""
    out, start = [], 0
    for i in range(1, n + 1):
        if i == n or shapes[i] != shapes[start] or i - start == batch:
            out.append(range(start, i))
            start = i
    return out


def features(images: list[np.ndarray], device: str = "cpu", bar=None) -> np.ndarray:
    """[(H, W, 3) uint8] -> (N, 2048) FID Inception features."""
    out = []
    for r in _same_size_batches(len(images), [im.shape for im in images], 16):
        out.append(M.inception_features(_tensor([images[i] for i in r]).to(device)))
        if bar is not None:
            bar.update(len(r))
    return np.concatenate(out)


def score(
    pred: list[np.ndarray],
    truth: list[np.ndarray],
    truth_feats: np.ndarray,
    truth_cf: torch.Tensor,
    *,
    lpips_net: str = "alex",
    device: str = "cpu",
    bar=None,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Predictions vs truths (lists of (H, W, 3) uint8) -> (set metrics, per-image metrics)."""
    per: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "lpips", "ciede2000")}
    per["colorfulness"] = []
    for r in _same_size_batches(len(pred), [p.shape for p in pred], 8):
        p, t = _tensor([pred[i] for i in r]), _tensor([truth[i] for i in r])
        per["psnr"] += M.psnr(p, t).tolist()
        per["ssim"] += M.ssim(p, t).tolist()
        per["lpips"] += M.lpips(p.to(device), t.to(device), net=lpips_net).tolist()
        per["ciede2000"] += M.ciede2000(p, t).tolist()
        per["colorfulness"] += M.colorfulness(p).tolist()
        if bar is not None:
            bar.update(len(r) / 2)
    feats = features(pred, device, bar=_HalfBar(bar))
    n = len(pred)
    kid, kid_std = M.kid_from_features(feats, truth_feats)
    cf = torch.tensor(per["colorfulness"], dtype=torch.float64)
    result = {
        "psnr": float(np.mean(per["psnr"])),
        "ssim": float(np.mean(per["ssim"])),
        "lpips": float(np.mean(per["lpips"])),
        "fid": M.fid_from_features(feats, truth_feats),
        "kid": kid,
        "colorfulness": float(cf.mean()),
        "delta_cf": M.delta_colorfulness(cf, truth_cf),
        "ciede2000": float(np.mean(per["ciede2000"])),
        "n": n,
        "kid_std": kid_std,
        "kid_subset_size": min(M.KID_SUBSET_SIZE, n),
        "fid_reliable": n >= M.FID_MIN_IMAGES,
        "colorfulness_truth": float(truth_cf.mean()),
    }
    return result, per


class _HalfBar:
    """Forwards half of each update: scoring a photo counts one step, metrics then features."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def update(self, n: float) -> None:
        if self.bar is not None:
            self.bar.update(n / 2)


# ---------------------------------------------------------------- the whole run
def _grey_rgb(grey: list[np.ndarray]) -> list[np.ndarray]:
    return [np.repeat(g[..., None], 3, axis=2) for g in grey]


def colorize_set(colorizer, grey: list[np.ndarray], batch_size: int = 8, bar=None) -> list:
    """Colour grey photos ((H, W) uint8) with a Colorizer -> [(H, W, 3) uint8 RGB]."""
    out = []
    for i in range(0, len(grey), batch_size):
        photos = [photo_from_image(Image.fromarray(g, "L")) for g in grey[i : i + batch_size]]
        out += [np.asarray(img.convert("RGB")) for img in colorizer.colorize_batch(photos)]
        if bar is not None:
            bar.update(len(photos))
    return out


def evaluate(
    test: TestSet,
    predictions: dict[str, list[np.ndarray] | Any],
    output: Path,
    *,
    protocol: dict[str, Any],
    notes: list[str] | None = None,
    size: int | None = None,
    lpips_net: str = "alex",
    device: str = "cpu",
    save_images: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every model against the truth and write the report folder -> the report dict.

    `predictions` maps a model name to its coloured images, or to a Colorizer that colours
    `test.grey` here. The grey baseline is added first.
    """
    from tqdm import tqdm

    n = len(test.names)
    todo = {GREY: _grey_rgb(test.grey), **predictions}
    to_colour = n * sum(not isinstance(v, list) for v in todo.values())
    bar = tqdm(total=n + len(todo) * n + to_colour, unit="photo", disable=not progress,
               file=sys.stderr, desc="truth features")  # fmt: skip
    started = time.time()
    truth_feats = features(test.truth, device, bar=bar)
    truth_cf = _colorfulness_of(test.truth)
    models: dict[str, dict[str, Any]] = {}
    per_image: dict[str, dict[str, list[float]]] = {}
    images: dict[str, list[np.ndarray]] = {}
    for name, value in todo.items():
        t0 = time.time()
        if isinstance(value, list):
            pred = value
        else:
            bar.set_description(f"colouring ({name})")
            pred = colorize_set(value, test.grey, bar=bar)
        colour_s = time.time() - t0
        bar.set_description(f"scoring {name}")
        models[name], per_image[name] = score(
            pred, test.truth, truth_feats, truth_cf, lpips_net=lpips_net, device=device, bar=bar
        )
        if not isinstance(value, list):
            models[name]["colorize_ms_per_photo"] = round(1000 * colour_s / n, 1)
        models[name]["score_s"] = round(time.time() - t0 - colour_s, 1)
        images[name] = pred
    bar.close()

    fid_note = []
    if n < M.FID_MIN_IMAGES:
        fid_note.append(
            f"FID on {n} images (fewer than {M.FID_MIN_IMAGES}, the feature dimension) is biased "
            "upwards and unstable: use it only to rank models on this same set, and prefer KID "
            f"(unbiased; subsets of {min(M.KID_SUBSET_SIZE, n)} images) for comparisons."
        )
    if n <= M.KID_SUBSET_SIZE:
        fid_note.append(
            f"KID's subsets are the whole set when n <= {M.KID_SUBSET_SIZE}: its std is then 0 "
            "and is no error bar."
        )
    report = {
        "protocol": {**protocol, "size": size, "lpips_net": lpips_net, "device": device},
        "n": n,
        "fid_reliable": n >= M.FID_MIN_IMAGES,
        "notes": fid_note + list(notes or []),
        "models": models,
        "photos": test.names,
        "seconds": round(time.time() - started, 1),
    }
    write_report(report, per_image, output)
    write_bar_charts(models, output / "metrics.png")
    report["sheets"] = write_sheets(test, images, output)
    if save_images:
        for name, imgs in {"truth": test.truth, **images}.items():
            for stem, im in zip(test.names, imgs, strict=True):
                path = output / "images" / _safe(name) / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(im).save(path)
    (output / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _colorfulness_of(images: list[np.ndarray]) -> torch.Tensor:
    """[(H, W, 3) uint8] of any sizes -> (N,) colourfulness."""
    parts = [
        M.colorfulness(_tensor([images[i] for i in r]))
        for r in _same_size_batches(len(images), [im.shape for im in images], 16)
    ]
    return torch.cat(parts)


def _safe(name: str) -> str:
    """A model name (may be a path) -> a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


# ---------------------------------------------------------------- outputs
def _fmt(value: float, decimals: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def markdown_table(models: dict[str, dict[str, Any]]) -> str:
    """The metrics as a Markdown table, the best model value of each column in bold."""
    heads = ["model"] + [c[1] for c in COLUMNS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    best = {}
    for key, _, better, _ in COLUMNS:
        values = [m[key] for name, m in models.items() if name != GREY]
        if better and values:
            best[key] = max(values) if better == "max" else min(values)
    for name, m in models.items():
        cells = [f"{name} (input)" if name == GREY else name]
        for key, _, _, decimals in COLUMNS:
            cell = _fmt(m[key], decimals)
            if key == "kid":
                cell += f" ± {_fmt(m['kid_std'], decimals)}"
            if key == "fid" and not m["fid_reliable"]:
                cell += "*"
            if key == "colorfulness":
                cell += f" (truth {m['colorfulness_truth']:.2f})"
            if name != GREY and key in best and m[key] == best[key] and len(models) > 2:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: dict[str, Any], per_image: dict, output: Path) -> None:
    """report.md and per_image.csv (report.json is written by evaluate, with the sheets)."""
    output.mkdir(parents=True, exist_ok=True)
    p = report["protocol"]
    lines = [
        "# pix2color evaluation",
        "",
        f"{report['n']} photos; {p['description']}",
        "",
        markdown_table(report["models"]),
        "",
        "↑ higher is better, ↓ lower is better. `grey` is the input itself (no colour): the "
        "floor. Colourfulness (Hasler & Süsstrunk) is neither better nor worse when high: "
        "ΔCF is its distance to the truth's. KID is the mean ± std over subsets.",
    ]
    if not report["fid_reliable"]:
        lines.append("")
        lines.append("\\* " + report["notes"][0])
    for note in report["notes"][1:]:
        lines += ["", note]
    lines += [
        "",
        "Protocol: RGB in [0, 1]; PSNR and SSIM (Gaussian 11x11, sigma 1.5) on RGB; LPIPS v0.1 "
        f"({p['lpips_net']}) on [-1, 1]; FID/KID on 2048-d TF-InceptionV3 pool features at "
        "299x299 (TF1 bilinear resize); CIEDE2000 on CIELAB (D65). Details: the docstring of "
        "`pix2color.metrics`.",
        "",
        "Files: report.json (all figures), per_image.csv, metrics.png, comparison_*.png.",
        "",
    ]
    (output / "report.md").write_text("\n".join(lines))
    with (output / "per_image.csv").open("w", newline="") as f:
        w = csv.writer(f)
        keys = ["psnr", "ssim", "lpips", "ciede2000", "colorfulness"]
        w.writerow(["model", "photo", *keys])
        for name, per in per_image.items():
            for i, photo in enumerate(report["photos"]):
                w.writerow([name, photo, *(f"{per[k][i]:.6g}" for k in keys)])


def write_bar_charts(models: dict[str, dict[str, Any]], path: Path) -> None:
    """One bar chart per metric, every model and the grey baseline side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(models)
    colours = ["0.6" if n == GREY else f"C{i}" for i, n in enumerate(names)]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (key, title, _, _) in zip(axes.ravel(), COLUMNS, strict=True):
        values = [models[n][key] for n in names]
        errors = [models[n]["kid_std"] for n in names] if key == "kid" else None
        ax.bar(range(len(names)), values, color=colours, yerr=errors, capsize=3)
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


def write_sheets(
    test: TestSet, images: dict[str, list[np.ndarray]], output: Path, rows: int = 6, sheets: int = 3
) -> list[str]:
    """comparison_NN.png: input | each model | truth, for photos spread over the set."""
    n = len(test.names)
    count = min(n, rows * sheets)
    chosen = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
    models = [k for k in images if k != GREY]
    columns = [("input", images[GREY])] + [(k, images[k]) for k in models] + [("truth", test.truth)]
    written = []
    for s in range(0, len(chosen), rows):
        picked = chosen[s : s + rows]
        cell = max(96, max(max(test.truth[i].shape[:2]) for i in picked))
        header = 22
        sheet = Image.new("RGB", (cell * len(columns), header + cell * len(picked)), "white")
        draw = ImageDraw.Draw(sheet)
        for c, (label, _) in enumerate(columns):
            draw.text((c * cell + 4, 5), _short(label, cell // 7), fill="black")
        for r, i in enumerate(picked):
            for c, (_, imgs) in enumerate(columns):
                img = Image.fromarray(imgs[i])
                scale = cell / max(img.size)
                img = img.resize((round(img.width * scale), round(img.height * scale)))
                sheet.paste(img, (c * cell, header + r * cell))
            label = _short(test.names[i], cell // 7)
            box = draw.textbbox((4, header + r * cell + 2), label)
            draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill="black")
            draw.text((4, header + r * cell + 2), label, fill="white")
        path = output / f"comparison_{s // rows + 1:02d}.png"
        sheet.save(path)
        written.append(path.name)
    return written


def write_json(models: dict[str, dict[str, Any]], path: Path) -> None:
    """--json FILE: {model (grey included): {METRIC_KEYS..., n, kid_std, fid_reliable, ...}}."""
    extra = ("n", "kid_std", "fid_reliable", "colorfulness_truth")
    out = {name: {k: m[k] for k in (*METRIC_KEYS, *extra)} for name, m in models.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


# ---------------------------------------------------------------- command line
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command to a subparsers object."""
    p = subparsers.add_parser(
        "evaluate",
        help="score models on the held-out test photos (or compare folders of results)",
        description="Colour the test photos of a prepared folder with each model, or compare "
        "a folder of results with a folder of truths, and write report.md, report.json, bar "
        "charts and comparison sheets. Metrics: PSNR, SSIM, LPIPS, FID, KID, colourfulness, "
        "deltaCF, CIEDE2000; a grey (input) baseline is always included.",
    )
    p.add_argument("--data", type=Path, help="a prepared folder (its test split is scored)")
    p.add_argument("--models", nargs="+", metavar="NAME_OR_PATH", help="models to compare")
    p.add_argument("--size", type=int, default=256, help="centre square side (default: 256)")
    p.add_argument("--pred", type=Path, help="folder of coloured results to score")
    p.add_argument("--truth", type=Path, help="folder of the true colour photos for --pred")
    p.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--lpips-net", choices=sorted(M.LPIPS_NETS), default="alex")
    p.add_argument("--device", default="cpu", help="cpu or cuda (models and metrics)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default: torch's choice; 1 "
        "is often faster on a machine busy with other work)",
    )
    p.add_argument("--save-images", action="store_true", help="write every scored image")
    p.add_argument(
        "--allow-leakage",
        action="store_true",
        help="score even if test photos are also training photos (the figures will be inflated)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    """`evaluate`: run one of the two forms and print the table; non-zero on any error."""
    from pix2color.models.io import ModelNotFoundError

    by_data = args.data is not None or bool(args.models)
    by_folders = args.pred is not None or args.truth is not None
    if by_data == by_folders:
        return _error("give either --data DIR --models NAME... or --pred DIR --truth DIR", 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if by_data:
            inputs = _data_form(args)
        else:
            inputs = _folder_form(args)
        if isinstance(inputs, int):
            return inputs
        test, predictions, protocol, notes = inputs
        report = evaluate(
            test,
            predictions,
            args.output,
            protocol=protocol,
            notes=notes,
            size=args.size if by_data else None,
            lpips_net=args.lpips_net,
            device=args.device,
            save_images=args.save_images,
            progress=not args.quiet,
        )
        if args.json is not None:
            write_json(report["models"], args.json)
    except ModelNotFoundError as e:
        return _error(str(e), EXIT_USAGE)
    except (M.MetricWeightsError, EvaluationError, ImageError) as e:
        return _error(str(e))
    except (FileNotFoundError, ValueError, OSError) as e:  # e.g. no test split, unwritable
        return _error(str(e))
    print(markdown_table(report["models"]))
    for note in report["notes"]:
        print(note)
    print(f"wrote {args.output}/report.md, report.json, per_image.csv, metrics.png and "
          f"{len(report['sheets'])} comparison sheet(s) in {report['seconds']:.0f} s")  # fmt: skip
    return EXIT_OK


def _data_form(args: argparse.Namespace):
    """--data/--models -> (test set, colorizers, protocol, notes), or an exit status."""
    from pix2color.inference import Colorizer

    if args.data is None or not args.models:
        return _error("--data and --models go together, e.g. --data data/photos --models "
                      "default", EXIT_USAGE)  # fmt: skip
    if args.size < 32:
        return _error(f"--size {args.size} is too small: LPIPS needs 32 or more (256 is the "
                      "usual protocol)", EXIT_USAGE)  # fmt: skip
    names = list(args.models)
    if len(set(names)) != len(names) or {GREY, "truth"} & set(names):
        return _error(
            f"model names must be distinct and neither {GREY!r} nor 'truth', got {names}",
            EXIT_USAGE,
        )
    # a missing model or missing metric weights fail now, not after minutes of work
    colorizers = {m: Colorizer.from_pretrained(m, size=args.size, device=args.device)
                  for m in names}  # fmt: skip
    M.lpips_state_dict(args.lpips_net)
    M.inception_weights_path()
    test, files = load_test_split(args.data, args.size)
    leaks = find_leaks(args.data, files)
    notes = []
    if leaks is None:
        log.warning("%s has no training split: leakage cannot be checked", args.data)
        notes.append("Leakage not checked: the folder has no training split.")
    elif leaks and not args.allow_leakage:
        return _error(
            _leak_message(leaks) + "; re-run `pix2color data prepare` so that each scene is "
            "in one split, or pass --allow-leakage to score anyway (the figures will be inflated)"
        )
    elif leaks:
        message = _leak_message(leaks)
        print(f"WARNING: --allow-leakage: {message}; these figures are INFLATED and must not "
              "be reported as held-out results", file=sys.stderr)  # fmt: skip
        notes.append(f"**WARNING: train/test leakage was allowed**: {message}.")
    protocol = {
        "form": "data",
        "data": str(args.data),
        "split": "test",
        "description": f"the test split of {args.data}, each photo's centre square resized to "
        f"{args.size}x{args.size} (bicubic) and coloured from its 8-bit grey version.",
        "leakage_checked": leaks is not None,
        "leakage": [vars(x) for x in leaks or []],
    }
    return test, colorizers, protocol, notes


def _folder_form(args: argparse.Namespace):
    """--pred/--truth -> (truth set, {pred folder name: images}, protocol, notes)."""
    if args.pred is None or args.truth is None:
        return _error("--pred and --truth go together", EXIT_USAGE)
    M.lpips_state_dict(args.lpips_net)
    M.inception_weights_path()
    test, pred = load_pairs(args.pred, args.truth)
    label = args.pred.resolve().name
    if label in (GREY, "truth"):
        label = f"{label}_pred"  # the baseline row and the truth images keep their names
    protocol = {
        "form": "pred/truth",
        "pred": str(args.pred),
        "truth": str(args.truth),
        "description": f"{args.pred} compared with {args.truth}, matched by file name, at "
        "their own size.",
    }
    notes = ["Leakage not checked: the training data behind these results is unknown."]
    return test, {label: pred}, protocol, notes
