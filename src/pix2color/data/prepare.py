"""Turn a folder of colour photos into clean, deduplicated train/val/test folders and a manifest.

Every photo is decoded upright (EXIF applied), then dropped with a reason if it is unreadable,
too small, a cut-out on a transparent background, near-grey, or a near-duplicate of a larger
photo (`dedupe`). A scene is one photo, or the photos that look alike by `stats.same_scene` or
that the source's SOURCE.json names as one scene; a scene never lands in two splits. The split
is by scene (the default), by source, or by source keeping an earlier run's held-out sources
(`split` says how each works). Keeping a plan, a photo of a training source that shows a scene
of a held-out photo is dropped ("held_out_scene"), and of two copies of one photo the held-out
one is kept.

When no photo is usable, nothing is written (WorkFailed, with the count per reason). Output:

    out/{train,val,test[,test_in]}/<subfolder>/<stem>.jpg   RGB, long side <= max_side
    out/manifest.csv                              one row per written photo
    out/prepare_report.json                       counts per split, drops per reason with files
    out/licenses/<source>/                        COPYRIGHT, SOURCE.json, CREDITS.txt of sources
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.data.dedupe import (
    DUP_CORRELATION,
    Candidate,
    drop_held_out_scenes,
    group_scenes,
    read_scenes,
)
from pix2color.data.report import PrepareReport, drop
from pix2color.data.split import (
    MAX_SOURCE_SHARE,
    SOURCE_SPLITS,
    SPLITS,
    KeptSplit,
    SourcePlan,
    check_split_by,
    plan_source_split,
    split_in_plan,
    split_of,
)
from pix2color.data.stats import (
    SCENE_CORRELATION,
    SCENE_HAMMING,
    Look,
    colorfulness,
    dhash,
    scene_signature,
)
from pix2color.errors import UsageError, WorkFailed
from pix2color.photo import IMAGE_EXTENSIONS, ImageError, read_photo

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "split", "path", "source", "original", "width", "height", "sha256", "dhash", "colorfulness",
)  # fmt: skip
LICENSE_NAMES = frozenset({"COPYRIGHT", "SOURCE.json", "CREDITS.txt", "LICENSE", "LICENSE.txt"})
TRANSPARENT_FRACTION = 0.05  # more transparent pixels than this: a cut-out, not a photo
JPEG_QUALITY = 95

# progress(stage, done, total): stage "inspect" (decode and filter) then "write"
Progress = Callable[[str, int, int], None]


def find_photo_root(src: Path) -> tuple[Path, str]:
    """(folder to scan, layout): src/color for the paired color/ + gray/ layout, else src."""
    if (src / "color").is_dir() and (src / "gray").is_dir():
        return src / "color", "paired"
    return src, "folder"


def prepare(
    src: Path,
    out: Path,
    *,
    min_side: int = 128,
    min_colorfulness: float = 8.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_side: int | None = 1024,
    split_by: str = "scene",
    seed: int = 0,
    fold: int = 0,
    folds: int | None = None,
    progress: Progress | None = None,
    keep_split: Path | None = None,
) -> PrepareReport:
    """Clean, deduplicate and split the photos under `src` into `out` (see the module docstring).

    split_by="source": seed, fold and folds choose the held-out sources (`plan_source_split`);
    or keep_split, an earlier prepare_report.json (or its folder), fixes them (`KeptSplit`).
    """
    src, out = Path(src), Path(out)
    _check_arguments(src, out, min_side, val_fraction, test_fraction, max_side)
    check_split_by(split_by, val_fraction, test_fraction)
    root, layout = find_photo_root(src)
    kept_split = None
    if keep_split is not None:
        if split_by != "source":
            raise UsageError("keep_split holds out an earlier run's sources: use split_by='source'")
        kept_split = KeptSplit.load(Path(keep_split))
        kept_split.check_folders(root)
    files = _photo_files(src, root, layout, out)
    report = PrepareReport(str(src), str(out), layout, found=len(files))
    report.settings = {
        "min_side": min_side,
        "min_colorfulness": min_colorfulness,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "max_side": max_side,
        "dup_hamming": SCENE_HAMMING,
        "dup_correlation": DUP_CORRELATION,
        "scene_correlation": SCENE_CORRELATION,
        "split_by": split_by,
    }

    # Pass 1: statistics of every photo (decoded images are not kept: they may not fit in memory).
    scenes = read_scenes(root)
    candidates: list[Candidate] = []
    for path in _with_progress(files, "inspect", progress):
        cand = _inspect(path, root, min_side, min_colorfulness, max_side, report)
        if cand is not None:
            cand.scene = scenes.get(cand.original, "")
            candidates.append(cand)
    held_out = kept_split.held_out if kept_split is not None else frozenset()
    kept = group_scenes(candidates, report, prefer=held_out)
    if held_out:
        kept = drop_held_out_scenes(kept, held_out, report)
    if not kept:
        raise WorkFailed(_nothing_kept(src, report))
    if kept_split is not None:
        splits, split_for = _kept_splitter(kept, report, kept_split, test_fraction)
    elif split_by == "source":
        splits, split_for = _source_splitter(kept, report, val_fraction, test_fraction, seed,
                                             fold, folds)  # fmt: skip
    else:
        splits = SPLITS

        def split_for(cand: Candidate, key: str) -> str:
            return split_of(key, val_fraction, test_fraction)

    # Pass 2: write the kept photos.
    _write_splits(kept, splits, split_for, root, out, max_side, report, progress)
    logger.info(
        "kept %s; dropped %s",
        report.kept,
        {reason: len(v) for reason, v in report.dropped.items()},
    )
    return report


def _photo_files(src: Path, root: Path, layout: str, out: Path) -> list[Path]:
    """The photo files under `root`, in a stable order, the output folder left out."""
    if layout == "paired":
        logger.info("%s: paired color/ + gray/ layout; using the colour photos only", src)
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    files = [p for p in files if not _is_inside(p, out)]
    if not files:
        raise UsageError(
            f"{root}: no photos found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "point SRC at a folder of colour photos, e.g. the one `data fetch` filled"
        )
    logger.info("%s: %d photo files", root, len(files))
    return files


def _source_splitter(
    kept: list[tuple[Candidate, str]],
    report: PrepareReport,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    fold: int,
    folds: int | None,
):
    """--split-by source: (split names, split_for(candidate, scene key)), the plan reported."""
    plan = plan_source_split(
        [(cand.source, key) for cand, key in kept],
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        fold=fold,
        folds=folds,
    )
    report.sources = plan.to_dict()
    report.settings.update(
        seed=seed, fold=plan.fold, folds=plan.folds, max_source_share=MAX_SOURCE_SHARE
    )
    return SOURCE_SPLITS, _split_for(plan, test_fraction)


def _kept_splitter(
    kept: list[tuple[Candidate, str]],
    report: PrepareReport,
    kept_split: KeptSplit,
    test_fraction: float,
):
    """keep_split: (split names, split_for(candidate, scene key)), the plan reported."""
    plan = kept_split.plan([cand.source for cand, _ in kept])
    report.sources = plan.to_dict()
    report.settings.update(
        seed=plan.seed, fold=plan.fold, folds=plan.folds, max_source_share=MAX_SOURCE_SHARE,
        keep_split=kept_split.path,
    )  # fmt: skip
    return SOURCE_SPLITS, _split_for(plan, test_fraction)


def _split_for(plan: SourcePlan, test_fraction: float) -> Callable[[Candidate, str], str]:
    """split_for(candidate, scene key) under a source plan."""

    def split_for(cand: Candidate, key: str) -> str:
        return split_in_plan(plan, cand.source, key, test_fraction)

    return split_for


def _write_splits(
    kept: list[tuple[Candidate, str]],
    splits: tuple[str, ...],
    split_for,
    root: Path,
    out: Path,
    max_side: int | None,
    report: PrepareReport,
    progress: Progress | None,
) -> None:
    """Write each kept photo into its split's folder, then manifest.csv, the licences and
    prepare_report.json."""
    _clean_outputs(out)
    report.kept = dict.fromkeys(splits, 0)
    rows: list[dict[str, object]] = []
    used: set[str] = set()
    for cand, key in _with_progress(kept, "write", progress):
        split = split_for(cand, key)
        rows.append(_write_photo(cand, root, out / split, max_side, used))
        report.kept[split] += 1
        report.kept_by_source.setdefault(cand.source, dict.fromkeys(splits, 0))[split] += 1
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    _copy_licenses(root, out)
    (out / "prepare_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def _with_progress(items: list, stage: str, progress: Progress | None) -> Iterator:
    """Yield the items, telling progress(stage, done, total) before each one and at the end."""
    for i, item in enumerate(items):
        if progress is not None:
            progress(stage, i, len(items))
        yield item
    if progress is not None:
        progress(stage, len(items), len(items))


def _write_photo(
    cand: Candidate, root: Path, folder: Path, max_side: int | None, used: set[str]
) -> dict[str, object]:
    """Write a kept photo as JPEG into its split's folder -> its manifest row."""
    rgb = _resized(_load(root / cand.original)[0], max_side)
    path = folder / Path(cand.original).with_suffix(".jpg")
    if path.as_posix() in used:  # "a.png" and "a.jpg" side by side in the source
        suffix = Path(cand.original).suffix.lstrip(".").lower()
        path = path.with_name(f"{path.stem}-{suffix}.jpg")
    used.add(path.as_posix())
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=JPEG_QUALITY, subsampling=0)
    return {
        "split": folder.name,
        "path": path.relative_to(folder.parent).as_posix(),
        "source": cand.source,
        "original": cand.original,
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "dhash": f"{cand.look.dhash:016x}",
        "colorfulness": f"{cand.colorfulness:.2f}",
    }


def _nothing_kept(src: Path, report: PrepareReport) -> str:
    """The message for photos that were all dropped: counts per reason, an example, what to do."""
    reasons = [(reason, files) for reason, files in report.dropped.items() if files]
    counts = ", ".join(f"{len(files)} {reason.replace('_', ' ')}" for reason, files in reasons)
    file, why = reasons[0][1][0]["file"], reasons[0][1][0]["why"]
    example = why if file in why else f"{file}: {why}"  # an unreadable file's reason names it
    return (
        f"{src}: no usable photo among the {report.found} found ({counts}; e.g. {example}); "
        "nothing was written. Give a folder of readable colour photos (JPEG, PNG, WebP), or "
        "lower --min-side / --min-colorfulness if they are small or nearly grey"
    )


def _check_arguments(
    src: Path,
    out: Path,
    min_side: int,
    val_fraction: float,
    test_fraction: float,
    max_side: int | None,
) -> None:
    """Raise UsageError with the offending value for arguments prepare() cannot work with."""
    if not src.is_dir():
        raise UsageError(f"{src}: no such folder; give the folder that holds the colour photos")
    if out.resolve() == src.resolve() or _is_inside(src, out):
        raise UsageError(
            f"output folder {out} must not be the source folder {src} or contain it; "
            "choose a separate folder such as data/photos"
        )
    if _is_inside(out, src):
        # Allowed (its outputs are skipped when scanning), but usually a mistake.
        logger.warning("output folder %s is inside the source folder %s", out, src)
    if min_side < 1:
        raise UsageError(f"min_side must be at least 1, got {min_side}")
    if max_side is not None and max_side < min_side:
        raise UsageError(f"max_side ({max_side}) must be at least min_side ({min_side}) or None")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise UsageError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise UsageError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves nothing to "
            "train on; keep their sum below 1"
        )


def _is_inside(path: Path, folder: Path) -> bool:
    """True if `path` is `folder` or lies inside it."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _load(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB (H, W, 3) uint8, alpha (H, W) uint8 or None) of an upright photo."""
    photo = read_photo(path)
    if photo.rgb is not None:
        return photo.rgb, photo.alpha
    gray = np.round(photo.gray * 255.0).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2), photo.alpha


def _resized(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """(H, W, 3) uint8 RGB downscaled so that its long side is at most max_side."""
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def _inspect(
    path: Path,
    root: Path,
    min_side: int,
    min_colorfulness: float,
    max_side: int | None,
    report: PrepareReport,
) -> Candidate | None:
    """Decode one photo and apply the single-photo filters; None if it was dropped."""
    original = path.relative_to(root).as_posix()
    source = original.split("/")[0] if "/" in original else ""
    try:
        rgb, alpha = _load(path)
    except ImageError as err:
        drop(report, "unreadable", original, str(err))
        return None
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        drop(report, "too_small", original, f"{w}x{h}, short side < {min_side}")
        return None
    if alpha is not None:
        clear = float((alpha < 250).mean())
        if clear > TRANSPARENT_FRACTION:
            drop(report, "transparent", original, f"{clear:.0%} transparent: a cut-out")
            return None
    # Colourfulness of what will be written, so the manifest and the filter agree.
    rgb = _resized(rgb, max_side)
    c = colorfulness(rgb)
    if c < min_colorfulness:
        drop(report, "near_grey", original, f"colourfulness {c:.1f} < {min_colorfulness}")
        return None
    look = Look(dhash(rgb), w / h, scene_signature(rgb))  # aspect of the original, unrounded
    return Candidate(original, source, w, h, c, look)


def _clean_outputs(out: Path) -> None:
    """Remove what an earlier run wrote to `out` (only prepare's own outputs)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (*SOURCE_SPLITS, "licenses"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in ("manifest.csv", "prepare_report.json"):
        (out / name).unlink(missing_ok=True)


def _copy_licenses(root: Path, out: Path) -> None:
    """Copy the licence files found under `root` to out/licenses/<source>/, keeping subfolders."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name in LICENSE_NAMES and not _is_inside(path, out):
            rel = path.relative_to(root)
            target = out / "licenses" / (rel if len(rel.parts) > 1 else Path("_top") / rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
