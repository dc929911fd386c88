"""A data study of a photo folder as files: plots (PNG) and summary.json.

Works on the output of `prepare` (then the photos listed in manifest.csv are read, with their
split) or on any folder of photos. Pixel statistics use a fixed random sample per photo, so two
runs give the same numbers.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg by default
from PIL import Image

from pix2color.color.lab import rgb_to_lab
from pix2color.data.stats import colorfulness
from pix2color.errors import UsageError, WorkFailed
from pix2color.photo import IMAGE_EXTENSIONS, ImageError, load_rgb

logger = logging.getLogger(__name__)

PIXELS_PER_PHOTO = 20_000
SAMPLE_GRID = 32  # photos in samples.png
CHANNEL_COLORS = ("tab:red", "tab:green", "tab:blue")


@dataclass
class _Entry:
    """One photo to study."""

    path: Path
    name: str  # relative to the studied folder
    source: str
    split: str


def eda(src: Path, out: Path) -> dict:
    """Study the photos in `src` (or those in its manifest.csv); write plots and summary.json."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UsageError(f"{src}: no such folder; give a folder of photos or a prepared data set")
    entries = _entries(src, out)
    if not entries:
        raise UsageError(
            f"{src}: no photos found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} and for "
            "a manifest.csv from `data prepare`)"
        )
    logger.info("studying %d photos from %s", len(entries), src)

    widths, heights, colorful, kept = [], [], [], []
    pixels = []
    unreadable = []
    for i, entry in enumerate(entries):
        try:
            rgb = load_rgb(entry.path)
        except ImageError as err:
            unreadable.append({"file": entry.name, "why": str(err)})
            continue
        kept.append(entry)
        heights.append(rgb.shape[0])
        widths.append(rgb.shape[1])
        colorful.append(colorfulness(rgb))
        flat = rgb.reshape(-1, 3)
        rng = np.random.default_rng(i)  # fixed per photo: reproducible statistics
        take = rng.choice(len(flat), size=min(PIXELS_PER_PHOTO, len(flat)), replace=False)
        pixels.append(flat[take])
    if not kept:
        raise WorkFailed(f"{src}: none of the {len(entries)} photos could be read")
    out.mkdir(parents=True, exist_ok=True)

    w, h, c = np.array(widths), np.array(heights), np.array(colorful)
    sample = np.concatenate(pixels)  # (N, 3) uint8
    lab = rgb_to_lab(sample[None])[0]  # (N, 3): L in [0, 100], a and b in about [-110, 110]
    sources = [e.source for e in kept]
    splits = [e.split for e in kept]
    pairs = list(zip(sources, splits, strict=True))

    plots = {
        "sizes": _plot_sizes(out / "sizes.png", w, h),
        "rgb_histogram": _plot_rgb(out / "rgb_histogram.png", sample),
        "ab_histogram": _plot_ab(out / "ab_histogram.png", lab),
        "colorfulness": _plot_colorfulness(out / "colorfulness.png", c, sources),
        "counts": _plot_counts(out / "counts.png", sources, splits),
        "samples": _plot_samples(out / "samples.png", kept),
    }
    summary = {
        "folder": str(src),
        "from_manifest": (src / "manifest.csv").is_file(),
        "photos": len(kept),
        "unreadable": unreadable,
        "by_source": dict(sorted(Counter(sources).items())),
        "by_split": dict(sorted(Counter(splits).items())),
        "by_source_split": {
            name: dict(sorted(Counter(sp for so, sp in pairs if so == name).items()))
            for name in sorted(set(sources))
        },
        "width": _describe(w),
        "height": _describe(h),
        "aspect": _describe(w / h),
        "megapixels": _describe(w * h / 1e6),
        "pixels_sampled": int(len(sample)),
        "rgb_mean": [round(float(v), 3) for v in sample.mean(axis=0)],
        "rgb_std": [round(float(v), 3) for v in sample.std(axis=0)],
        "lab_mean": [round(float(v), 3) for v in lab.mean(axis=0)],
        "lab_std": [round(float(v), 3) for v in lab.std(axis=0)],
        "colorfulness": _describe(c),
        "plots": {name: path.name for name, path in plots.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("wrote %d plots and summary.json to %s", len(plots), out)
    return summary


def _entries(src: Path, out: Path) -> list[_Entry]:
    """The photos to study: those in src/manifest.csv, else every image under src (not in out)."""
    manifest = src / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        missing = {"path", "split"} - set(rows[0] if rows else {"path": 0, "split": 0})
        if missing:
            raise UsageError(
                f"{manifest}: missing column(s) {', '.join(sorted(missing))}; is it a manifest "
                "written by `data prepare`?"
            )
        return [_Entry(src / r["path"], r["path"], r.get("source", ""), r["split"]) for r in rows]
    out_resolved = out.resolve()
    entries = []
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.resolve().is_relative_to(out_resolved):  # our own plots
            continue
        rel = path.relative_to(src)
        source = rel.parts[0] if len(rel.parts) > 1 else ""
        entries.append(_Entry(path, rel.as_posix(), source, ""))
    return entries


def _describe(x: np.ndarray) -> dict[str, float]:
    """min, max, mean, median, 10th and 90th percentile, rounded."""
    return {
        "min": round(float(x.min()), 3),
        "p10": round(float(np.percentile(x, 10)), 3),
        "median": round(float(np.median(x)), 3),
        "mean": round(float(x.mean()), 3),
        "p90": round(float(np.percentile(x, 90)), 3),
        "max": round(float(x.max()), 3),
    }


def _save(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG and return its path."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_sizes(path: Path, w: np.ndarray, h: np.ndarray) -> Path:
    """Width and height histograms and a width-height scatter."""
    fig = Figure(figsize=(13, 4))
    ax_w, ax_h, ax_s = fig.subplots(1, 3)
    ax_w.hist(w, bins=30, color="tab:gray")
    ax_w.set(title="width", xlabel="pixels", ylabel="photos")
    ax_h.hist(h, bins=30, color="tab:gray")
    ax_h.set(title="height", xlabel="pixels", ylabel="photos")
    ax_s.scatter(w, h, s=8, alpha=0.5)
    ax_s.set(title=f"width x height ({len(w)} photos)", xlabel="width", ylabel="height")
    return _save(fig, path)


def _plot_rgb(path: Path, sample: np.ndarray) -> Path:
    """Per-channel histograms of the sampled pixels."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for channel, (name, color) in enumerate(zip("RGB", CHANNEL_COLORS, strict=True)):
        counts = np.bincount(sample[:, channel], minlength=256)
        ax.plot(np.arange(256), counts / counts.sum(), color=color, label=name)
    ax.set(title=f"RGB histogram ({len(sample):,} sampled pixels)", xlabel="value", ylabel="share")
    ax.legend()
    return _save(fig, path)


def _plot_ab(path: Path, lab: np.ndarray) -> Path:
    """Log-density of the sampled pixels in the Lab ab plane, and the L histogram."""
    fig = Figure(figsize=(10, 4.5))
    ax_ab, ax_l = fig.subplots(1, 2)
    counts, _, _ = np.histogram2d(lab[:, 1], lab[:, 2], bins=110, range=[[-110, 110], [-110, 110]])
    image = ax_ab.imshow(
        np.log10(counts.T + 1), origin="lower", extent=(-110, 110, -110, 110), cmap="magma"
    )
    fig.colorbar(image, ax=ax_ab, label="log10(pixels + 1)")
    ax_ab.set(title="ab plane (what the colorizer predicts)", xlabel="a", ylabel="b")
    ax_l.hist(lab[:, 0], bins=50, range=(0, 100), color="tab:gray")
    ax_l.set(title="L (what the colorizer sees)", xlabel="L", ylabel="pixels")
    return _save(fig, path)


def _plot_colorfulness(path: Path, c: np.ndarray, sources: list[str]) -> Path:
    """Colourfulness histogram, stacked by source."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    names = sorted(set(sources))
    groups = [c[[s == name for s in sources]] for name in names]
    ax.hist(groups, bins=30, stacked=True, label=[n or "(top level)" for n in names])
    ax.set(title="Hasler-Süsstrunk colourfulness", xlabel="colourfulness", ylabel="photos")
    ax.legend(fontsize="small")
    return _save(fig, path)


def _plot_counts(path: Path, sources: list[str], splits: list[str]) -> Path:
    """Photos per source, stacked by split when there are splits."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    names = sorted(set(sources))
    labels = [n or "(top level)" for n in names]
    bottom = np.zeros(len(names))
    split_names = [s for s in ("train", "val", "test") if s in splits] or [""]
    split_names += sorted(set(splits) - set(split_names))
    for split in split_names:
        counts = np.array(
            [sum(1 for so, sp in zip(sources, splits, strict=True) if so == n and sp == split)
             for n in names]
        )  # fmt: skip
        ax.bar(labels, counts, bottom=bottom, label=split or "photos")
        bottom += counts
    ax.set(title="photos per source", ylabel="photos")
    ax.tick_params(axis="x", labelrotation=20)
    ax.legend()
    return _save(fig, path)


def _plot_samples(path: Path, entries: list[_Entry]) -> Path:
    """A grid of evenly spaced photos, to see what the data looks like."""
    step = max(1, len(entries) // SAMPLE_GRID)
    chosen = entries[::step][:SAMPLE_GRID]
    cols = 8
    rows = (len(chosen) + cols - 1) // cols
    fig = Figure(figsize=(2 * cols, 1.7 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, entry in zip(axes, chosen, strict=False):
        img = Image.fromarray(load_rgb(entry.path))
        img.thumbnail((256, 256))
        ax.imshow(np.asarray(img))
        ax.set_title(Path(entry.name).stem[:24], fontsize=7)
    return _save(fig, path)
