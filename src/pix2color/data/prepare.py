"""Turn a folder of colour photos into clean, deduplicated train/val/test folders and a manifest.

Every photo is decoded upright (EXIF applied), then dropped with a reason if it is unreadable,
too small, a cut-out on a transparent background, near-grey, or a near-duplicate of a larger
photo. The split of a kept photo is a function of its scene's perceptual hash alone (a scene: one
photo, or the photos that look alike by `stats.same_scene` or that the source's SOURCE.json names
as one scene), so a re-run gives the same split and a scene never lands in two splits. When no
photo is usable, nothing is written (WorkFailed, with the count per reason). Output:

    out/{train,val,test}/<subfolder>/<stem>.jpg   RGB, long side <= max_side
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.data.images import IMAGE_EXTENSIONS, ImageError, read_photo
from pix2color.data.stats import (
    SCENE_CORRELATION,
    SCENE_HAMMING,
    Look,
    colorfulness,
    dhash,
    same_scene,
    scene_candidates,
    scene_signature,
)
from pix2color.errors import UsageError, WorkFailed

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = (
    "split", "path", "source", "original", "width", "height", "sha256", "dhash", "colorfulness",
)  # fmt: skip
LICENSE_NAMES = frozenset({"COPYRIGHT", "SOURCE.json", "CREDITS.txt", "LICENSE", "LICENSE.txt"})
DROP_REASONS = ("unreadable", "too_small", "transparent", "near_grey", "duplicate")

# Photos of one scene by `stats.same_scene` are kept in one split, and so are photos that a
# source's SOURCE.json names as one scene ("scenes": {file: label}). Those of one scene whose
# thumbnails correlate at DUP_CORRELATION or more are one photo (resized, recompressed): only the
# largest is kept.
DUP_CORRELATION = 0.97
TRANSPARENT_FRACTION = 0.05  # more transparent pixels than this: a cut-out, not a photo
JPEG_QUALITY = 95

# progress(stage, done, total): stage "inspect" (decode and filter) then "write"
Progress = Callable[[str, int, int], None]


@dataclass
class PrepareReport:
    """What prepare() kept (per split and source) and dropped (per reason, with the files)."""

    src: str
    out: str
    layout: str  # "folder" or "paired" (a color/ + gray/ folder: only color/ is used)
    found: int = 0
    kept: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    kept_by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {reason: [] for reason in DROP_REASONS}
    )
    settings: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict, with the drop counts next to the dropped files."""
        d = asdict(self)
        d["dropped_counts"] = {reason: len(files) for reason, files in self.dropped.items()}
        return d


@dataclass
class _Candidate:
    """One readable photo's statistics from the first pass."""

    original: str  # path relative to the photo root, posix
    source: str
    width: int
    height: int
    colorfulness: float
    look: Look  # of the photo as it will be written, with the original's aspect ratio
    scene: str = ""  # a scene named by the source (SOURCE.json "scenes"), "" if none


def split_of(key: str, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split for a stable key: sha1(key) mapped to [0, 1) against the fractions."""
    u = int(hashlib.sha1(key.encode()).hexdigest()[:15], 16) / 16**15
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


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
    progress: Progress | None = None,
) -> PrepareReport:
    """Clean, deduplicate and split the photos under `src` into `out` (see the module docstring)."""
    src, out = Path(src), Path(out)
    _check_arguments(src, out, min_side, val_fraction, test_fraction, max_side)
    root, layout = find_photo_root(src)
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
    }

    # Pass 1: statistics of every photo (decoded images are not kept: they may not fit in memory).
    scenes = _read_scenes(root)
    candidates: list[_Candidate] = []
    for path in _with_progress(files, "inspect", progress):
        cand = _inspect(path, root, min_side, min_colorfulness, max_side, report)
        if cand is not None:
            cand.scene = scenes.get(cand.original, "")
            candidates.append(cand)
    kept = _group_scenes(candidates, report)
    if not kept:
        raise WorkFailed(_nothing_kept(src, report))

    # Pass 2: write the kept photos.
    _clean_outputs(out)
    rows: list[dict[str, object]] = []
    used: set[str] = set()
    for cand, key in _with_progress(kept, "write", progress):
        split = split_of(key, val_fraction, test_fraction)
        rows.append(_write_photo(cand, root, out / split, max_side, used))
        report.kept[split] += 1
        report.kept_by_source.setdefault(cand.source, dict.fromkeys(SPLITS, 0))[split] += 1

    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    _copy_licenses(root, out)
    (out / "prepare_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    logger.info(
        "kept %s; dropped %s",
        report.kept,
        {reason: len(v) for reason, v in report.dropped.items()},
    )
    return report


def _with_progress(items: list, stage: str, progress: Progress | None) -> Iterator:
    """Yield the items, telling progress(stage, done, total) before each one and at the end."""
    for i, item in enumerate(items):
        if progress is not None:
            progress(stage, i, len(items))
        yield item
    if progress is not None:
        progress(stage, len(items), len(items))


def _write_photo(
    cand: _Candidate, root: Path, folder: Path, max_side: int | None, used: set[str]
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
    grey = np.round(photo.gray * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2), photo.alpha


def _resized(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """(H, W, 3) uint8 RGB downscaled so that its long side is at most max_side."""
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def _drop(report: PrepareReport, reason: str, original: str, detail: str) -> None:
    """Record a dropped photo."""
    logger.debug("drop %s (%s): %s", original, reason, detail)
    report.dropped[reason].append({"file": original, "why": detail})


def _inspect(
    path: Path,
    root: Path,
    min_side: int,
    min_colorfulness: float,
    max_side: int | None,
    report: PrepareReport,
) -> _Candidate | None:
    """Decode one photo and apply the single-photo filters; None if it was dropped."""
    original = path.relative_to(root).as_posix()
    source = original.split("/")[0] if "/" in original else ""
    try:
        rgb, alpha = _load(path)
    except ImageError as err:
        _drop(report, "unreadable", original, str(err))
        return None
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        _drop(report, "too_small", original, f"{w}x{h}, short side < {min_side}")
        return None
    if alpha is not None:
        clear = float((alpha < 250).mean())
        if clear > TRANSPARENT_FRACTION:
            _drop(report, "transparent", original, f"{clear:.0%} transparent: a cut-out")
            return None
    # Colourfulness of what will be written, so the manifest and the filter agree.
    rgb = _resized(rgb, max_side)
    c = colorfulness(rgb)
    if c < min_colorfulness:
        _drop(report, "near_grey", original, f"colourfulness {c:.1f} < {min_colorfulness}")
        return None
    look = Look(dhash(rgb), w / h, scene_signature(rgb))  # aspect of the original, unrounded
    return _Candidate(original, source, w, h, c, look)


def _group_scenes(
    candidates: list[_Candidate], report: PrepareReport
) -> list[tuple[_Candidate, str]]:
    """Drop near-duplicates (keeping the largest) -> [(kept photo, split key of its scene)]."""
    n = len(candidates)
    if n == 0:
        return []
    hashes = np.array([c.look.dhash for c in candidates], dtype=np.uint64)
    scene = _UnionFind(n)  # shots of one scene: kept, same split
    copy = _UnionFind(n)  # the same photo (resized, recompressed): keep one
    for i in range(n - 1):
        for k in scene_candidates(candidates[i].look.dhash, hashes[i + 1 :]):
            j = i + 1 + k
            correlation = same_scene(candidates[i].look, candidates[j].look)
            if correlation is None:
                continue
            scene.union(i, j)
            if correlation >= DUP_CORRELATION:
                copy.union(i, j)
    first_of_scene: dict[str, int] = {}
    for i, cand in enumerate(candidates):
        if cand.scene:
            scene.union(i, first_of_scene.setdefault(cand.scene, i))

    keep = []
    for members in copy.groups():
        best = max(members, key=lambda k: (candidates[k].width * candidates[k].height, -k))
        keep.append(best)
        b = candidates[best]
        for k in members:
            if k != best:
                c = candidates[k]
                detail = f"same photo as {b.original} ({b.width}x{b.height}, kept)"
                _drop(report, "duplicate", c.original, f"{c.width}x{c.height}, {detail}")
    # The split key of a scene is its smallest dHash: the same for every photo in it.
    scene_key = {}
    for members in scene.groups():
        key = f"{min(candidates[k].look.dhash for k in members):016x}"
        scene_key.update(dict.fromkeys(members, key))
    return [(candidates[k], scene_key[k]) for k in sorted(keep)]


class _UnionFind:
    """Disjoint sets over 0..n-1."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The representative of i's set."""
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        """Merge the sets of i and j."""
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """The sets, each sorted, in order of their smallest member."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def _read_scenes(root: Path) -> dict[str, str]:
    """{photo path relative to root: scene id} from the "scenes" of SOURCE.json files under root."""
    scenes = {}
    for meta_path in sorted(root.rglob("SOURCE.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as err:
            logger.warning("%s: not valid JSON (%s); its scenes are ignored", meta_path, err)
            continue
        folder = meta_path.parent.relative_to(root).as_posix()
        named = meta.get("scenes") if isinstance(meta, dict) else None
        for name, label in (named or {}).items():
            rel = f"{folder}/{name}" if folder != "." else name
            scenes[rel] = f"{folder}:{label}"
    return scenes


def _clean_outputs(out: Path) -> None:
    """Remove what an earlier run wrote to `out` (only prepare's own outputs)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (*SPLITS, "licenses"):
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
