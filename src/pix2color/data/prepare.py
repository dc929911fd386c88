"""Turn a folder of colour photos into clean, deduplicated train/val/test folders and a manifest.

Every photo is decoded upright (EXIF applied), then dropped with a reason if it is unreadable,
too small, a cut-out on a transparent background, near-grey, or a near-duplicate of a larger
photo. A scene is one photo, or the photos that look alike by `stats.same_scene` or that the
source's SOURCE.json names as one scene; a scene never lands in two splits. Two ways to split:

- by scene (`split_by="scene"`, the default): the split of a kept photo is a function of its
  scene's perceptual hash alone, so a re-run gives the same split.
- by source (`split_by="source"`): whole source packages (the first folder under src) go to
  val and to test, so that both measure photos from sources never seen in training, which is
  what users bring (`plan_source_split` says how they are chosen). Inside the training
  sources, scenes chosen by hash as above form `test_in`, the in-source test split, so that
  in-source and out-of-source figures can be compared. No source and no scene is in two splits.
- by source, keeping an earlier plan (`keep_split=` an earlier run's prepare_report.json): the
  val and test sources are exactly that run's, every other source trains (sources added since
  included), so that adding photo sources leaves the held-out splits, and every figure measured
  on them, as they were. A photo of a training source that shows a scene of a held-out photo
  is dropped ("held_out_scene"), and of two copies of one photo the held-out one is kept.

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
IN_SOURCE_TEST = "test_in"  # held-out scenes of the training sources (split_by="source")
SOURCE_SPLITS = (*SPLITS, IN_SOURCE_TEST)
SPLIT_BY = ("scene", "source")
# A source (or a group of sources that share a scene) may be held out only if it holds at most
# this share of the test split aimed at (test_fraction of the kept photos): a big package would
# make the split mostly one game's or one photographer's look, so it stays in training.
MAX_SOURCE_SHARE = 0.4
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
    sources: dict[str, object] = field(default_factory=dict)  # split_by="source": the plan
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
    _check_split_by(split_by, val_fraction, test_fraction)
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
    scenes = _read_scenes(root)
    candidates: list[_Candidate] = []
    for path in _with_progress(files, "inspect", progress):
        cand = _inspect(path, root, min_side, min_colorfulness, max_side, report)
        if cand is not None:
            cand.scene = scenes.get(cand.original, "")
            candidates.append(cand)
    held_out = kept_split.held_out if kept_split is not None else frozenset()
    kept = _group_scenes(candidates, report, prefer=held_out)
    if held_out:
        kept = _drop_held_out_scenes(kept, held_out, report)
    if not kept:
        raise WorkFailed(_nothing_kept(src, report))
    if kept_split is not None:
        splits, split_for = _kept_splitter(kept, report, kept_split, test_fraction)
    elif split_by == "source":
        splits, split_for = _source_splitter(kept, report, val_fraction, test_fraction, seed,
                                             fold, folds)  # fmt: skip
    else:
        splits = SPLITS

        def split_for(cand: _Candidate, key: str) -> str:
            return split_of(key, val_fraction, test_fraction)

    # Pass 2: write the kept photos.
    _write_splits(kept, splits, split_for, root, out, max_side, report, progress)
    logger.info(
        "kept %s; dropped %s",
        report.kept,
        {reason: len(v) for reason, v in report.dropped.items()},
    )
    return report


def _check_split_by(split_by: str, val_fraction: float, test_fraction: float) -> None:
    if split_by not in SPLIT_BY:
        raise UsageError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    if split_by == "source" and (val_fraction <= 0 or test_fraction <= 0):
        raise UsageError(
            "--split-by source holds out whole sources for val and for test: give both "
            f"fractions above 0 (got val {val_fraction}, test {test_fraction})"
        )


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
    kept: list[tuple[_Candidate, str]],
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

    def split_for(cand: _Candidate, key: str) -> str:
        held_out = plan.split_of_source[cand.source]
        if held_out != "train":
            return held_out
        # the in-source test: the scenes the scene split would put in test
        return IN_SOURCE_TEST if split_of(key, 0.0, test_fraction) == "test" else "train"

    return SOURCE_SPLITS, split_for


def _kept_splitter(
    kept: list[tuple[_Candidate, str]],
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

    def split_for(cand: _Candidate, key: str) -> str:
        held_out = plan.split_of_source[cand.source]
        if held_out != "train":
            return held_out
        return IN_SOURCE_TEST if split_of(key, 0.0, test_fraction) == "test" else "train"

    return SOURCE_SPLITS, split_for


def _drop_held_out_scenes(
    kept: list[tuple[_Candidate, str]], held_out: frozenset[str], report: PrepareReport
) -> list[tuple[_Candidate, str]]:
    """Drop the training photos that show a scene of a held-out photo (keep_split).

    Without a kept plan, sources sharing a scene are held out or trained together; with one,
    the held-out sources are fixed, so the photo of a newer source goes instead.
    """
    held_scene: dict[str, str] = {}
    for cand, key in kept:
        if cand.source in held_out:
            held_scene.setdefault(key, cand.original)
    result = []
    for cand, key in kept:
        if cand.source not in held_out and key in held_scene:
            detail = f"same scene as {held_scene[key]}, which is held out for val or test"
            _drop(report, "held_out_scene", cand.original, detail)
        else:
            result.append((cand, key))
    return result


def _write_splits(
    kept: list[tuple[_Candidate, str]],
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


@dataclass
class SourcePlan:
    """Which sources `split_by="source"` holds out, and why (prepare_report.json's "sources")."""

    seed: int
    fold: int
    folds: int
    photos: dict[str, int]  # kept photos per source
    split_of_source: dict[str, str]  # source -> "train", "val" or "test"
    fold_tests: list[list[str]]  # the test sources of each fold: disjoint, they cover the pool
    too_big: list[str]  # sources above MAX_SOURCE_SHARE of a test split: always in training
    linked: list[list[str]]  # sources that share a scene, held out or kept together
    kept_from: str = ""  # keep_split: the prepare_report.json whose val and test were kept
    added: list[str] = field(default_factory=list)  # keep_split: sources that report lacked

    def sources_in(self, split: str) -> list[str]:
        """The sources of one split, sorted."""
        return sorted(s for s, v in self.split_of_source.items() if v == split)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: each split's sources with their photo counts, and the rule."""
        return {
            "split_by": "source",
            "seed": self.seed,
            "fold": self.fold,
            "folds": self.folds,
            **{split: {s: self.photos[s] for s in self.sources_in(split)} for split in SPLITS},
            "fold_tests": self.fold_tests,
            "too_big_to_hold_out": self.too_big,
            "linked_by_a_scene": self.linked,
            **self._kept_entries(),
            "rule": f"held out: whole sources of at most {MAX_SOURCE_SHARE:.0%} of a test split "
            "(test fraction of the kept photos), sources that share a scene as one unit; "
            "the units are dealt into `folds` groups of about equal photo counts (largest "
            "first, ties in a seeded order); fold k tests group k; val takes whole units from "
            "the next groups until it holds the val fraction of the photos; the rest train",
        }

    def _kept_entries(self) -> dict[str, object]:
        if not self.kept_from:
            return {}
        return {
            "kept_from": self.kept_from,
            "added_to_training": self.added,
            "kept_rule": "val and test are the sources of kept_from's plan (chosen by the rule "
            "below on the sources of that time); every other source trains",
        }


@dataclass
class KeptSplit:
    """The held-out sources of an earlier `--split-by source` run, to hold out again."""

    path: str
    val: list[str]
    test: list[str]
    train: list[str]  # the training sources of that run (others are added sources)
    photos: dict[str, int]  # that run's kept photos per held-out source
    seed: int
    fold: int
    folds: int
    fold_tests: list[list[str]]
    too_big: list[str]
    linked: list[list[str]]

    @property
    def held_out(self) -> frozenset[str]:
        """The val and test sources."""
        return frozenset(self.val) | frozenset(self.test)

    @classmethod
    def load(cls, path: Path) -> KeptSplit:
        """Read a prepare_report.json (or the folder that holds one, or a file holding only
        its "sources" plan); UsageError if unusable."""
        if path.is_dir():
            path = path / "prepare_report.json"
        try:
            report = json.loads(path.read_text())
        except OSError as err:
            raise UsageError(
                f"{path}: cannot read it ({err.strerror or err}); give the prepare_report.json "
                "(or its folder) of the `data prepare --split-by source` run to keep"
            ) from None
        except ValueError as err:
            raise UsageError(f"{path}: not valid JSON ({err})") from None
        # a whole prepare_report.json, or only its "sources" (e.g. a plan kept in the repo)
        plan = report.get("sources", report) if isinstance(report, dict) else None
        if not isinstance(plan, dict) or plan.get("split_by") != "source":
            raise UsageError(
                f"{path}: not the report of a `--split-by source` run (it names no held-out "
                "sources); prepare once with --split-by source, then keep that split"
            )
        try:
            val, test, train = (dict(plan[split]) for split in ("val", "test", "train"))
            return cls(
                path=str(path),
                val=sorted(val),
                test=sorted(test),
                train=sorted(train),
                photos={**val, **test},
                seed=int(plan["seed"]),
                fold=int(plan["fold"]),
                folds=int(plan["folds"]),
                fold_tests=[list(t) for t in plan.get("fold_tests", [])],
                too_big=list(plan.get("too_big_to_hold_out", [])),
                linked=[list(u) for u in plan.get("linked_by_a_scene", [])],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(f'{path}: its "sources" plan is incomplete ({err!r})') from None

    def check_folders(self, root: Path) -> None:
        """UsageError if a held-out source has no folder under root: val or test would change."""
        missing = sorted(s for s in self.held_out if not (root / s).is_dir())
        if missing:
            raise UsageError(
                f"{root}: the held-out source(s) {', '.join(missing)} of {self.path} are not "
                "there, so val or test would not be the same; fetch them (`data fetch`) or "
                "give SRC that holds them"
            )

    def plan(self, sources: list[str]) -> SourcePlan:
        """The plan for the kept photos' sources (one entry per photo)."""
        counts: dict[str, int] = {}
        for source in sources:
            counts[source] = counts.get(source, 0) + 1
        lost = sorted(s for s in self.held_out if s not in counts)
        if lost:
            raise UsageError(
                f"the held-out source(s) {', '.join(lost)} of {self.path} have no usable photo "
                "left, so val or test would not be the same; use the settings of that run"
            )
        for s in sorted(self.held_out):
            if counts[s] != self.photos[s]:
                logger.warning("%s: %d photos kept, %d in %s", s, counts[s], self.photos[s],
                               self.path)  # fmt: skip
        split_of_source = dict.fromkeys(sorted(counts), "train")
        split_of_source.update(dict.fromkeys(self.val, "val"))
        split_of_source.update(dict.fromkeys(self.test, "test"))
        return SourcePlan(
            seed=self.seed,
            fold=self.fold,
            folds=self.folds,
            photos=counts,
            split_of_source=split_of_source,
            fold_tests=self.fold_tests,
            too_big=self.too_big,
            linked=self.linked,
            kept_from=self.path,
            added=sorted(s for s in counts if s not in self.held_out and s not in self.train),
        )


def plan_source_split(
    photos: list[tuple[str, str]],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
    fold: int = 0,
    folds: int | None = None,
) -> SourcePlan:
    """Hold out whole sources: (source, scene key) of each kept photo -> the plan.

    Sources that share a scene are one unit (so no scene and no source is in two splits). Only
    units of at most MAX_SOURCE_SHARE x (test_fraction x photos) may be held out, so that a
    held-out split mixes several looks instead of being one package; the bigger ones always
    train. The held-out units are dealt into `folds` groups of about equal size (default: as
    many as give a test split of about test_fraction, at least 2); fold k's test is group k,
    its val takes whole units from the groups after k until it holds val_fraction of the
    photos, and the remaining units train. Over the folds every held-out unit is tested once.
    """
    counts: dict[str, int] = {}
    for source, _ in photos:
        counts[source] = counts.get(source, 0) + 1
    names = sorted(counts)
    units = _source_units(photos, names)
    size = {tuple(u): sum(counts[s] for s in u) for u in units}

    total = len(photos)
    cap = MAX_SOURCE_SHARE * test_fraction * total
    pool = [u for u in units if size[tuple(u)] <= cap]
    too_big = sorted(s for u in units if size[tuple(u)] > cap for s in u)
    if len(pool) < 2:
        listing = ", ".join(f"{s or '(top level)'} {counts[s]}" for s in names)
        raise UsageError(
            f"--split-by source needs at least 2 sources (first folders under SRC) that can be "
            f"held out whole, of at most {cap:.0f} photos each ({MAX_SOURCE_SHARE:.0%} of a test "
            f"split of {test_fraction:.0%}); there are {len(names)} source(s) ({listing}), "
            f"{len(pool)} of them small enough. Add photo sources, raise --test, or use "
            "--split-by scene"
        )
    pool_photos = sum(size[tuple(u)] for u in pool)
    if folds is None:
        folds = min(len(pool), max(2, round(pool_photos / (test_fraction * total))))
    if not 2 <= folds <= len(pool):
        raise UsageError(
            f"--folds {folds}: give 2 to {len(pool)} (one test group per fold, and there are "
            f"{len(pool)} sources or linked groups of sources small enough to hold out)"
        )
    if not 0 <= fold < folds:
        raise UsageError(f"--fold {fold}: give 0 to {folds - 1} (there are {folds} folds)")

    groups = _deal(pool, size, folds, seed)
    split_of_source = dict.fromkeys(names, "train")
    for u in groups[fold]:
        split_of_source.update(dict.fromkeys(u, "test"))
    val_target, val_photos = val_fraction * total, 0
    for g in range(1, folds):
        for u in groups[(fold + g) % folds]:
            if val_photos < val_target:
                split_of_source.update(dict.fromkeys(u, "val"))
                val_photos += size[tuple(u)]
    _warn_if_one_look(split_of_source, counts)
    if not any(v == "train" for v in split_of_source.values()):
        raise UsageError(
            f"--split-by source: the {len(names)} source(s) all went to val and test, leaving "
            "none to train on; lower --val, raise --folds, or add photo sources"
        )
    return SourcePlan(
        seed=seed,
        fold=fold,
        folds=folds,
        photos=counts,
        split_of_source=split_of_source,
        fold_tests=[sorted(s for u in g for s in u) for g in groups],
        too_big=too_big,
        linked=[u for u in units if len(u) > 1],
    )


def _source_units(photos: list[tuple[str, str]], names: list[str]) -> list[list[str]]:
    """The sources grouped by shared scenes: a scene in two sources makes them one unit."""
    index = {s: i for i, s in enumerate(names)}
    links = _UnionFind(len(names))
    first_source_of_scene: dict[str, str] = {}
    for source, key in photos:
        links.union(index[source], index[first_source_of_scene.setdefault(key, source)])
    return [[names[i] for i in members] for members in links.groups()]


def _deal(
    units: list[list[str]], size: dict[tuple, int], folds: int, seed: int
) -> list[list[list[str]]]:
    """Deal units into `folds` groups of about equal photo counts, each group non-empty.

    Largest first, by powers of two so that the seed can reorder units of similar size, each
    into the group with the fewest photos so far.
    """

    def order(u: list[str]) -> tuple[int, str]:
        shuffled = hashlib.sha1(f"{seed}:{'+'.join(u)}".encode()).hexdigest()
        return -size[tuple(u)].bit_length(), shuffled

    groups: list[list[list[str]]] = [[] for _ in range(folds)]
    for u in sorted(units, key=order):
        lightest = min(range(folds), key=lambda g: (sum(size[tuple(v)] for v in groups[g]), g))
        groups[lightest].append(u)
    return groups


def _warn_if_one_look(split_of_source: dict[str, str], counts: dict[str, int]) -> None:
    """Log a warning for a held-out split that is one source, or more than half one source."""
    for split in ("val", "test"):
        held = [s for s, v in split_of_source.items() if v == split]
        largest = max(counts[s] for s in held) / sum(counts[s] for s in held)
        if len(held) == 1 or largest > 0.5:
            # more folds than the sources allow: the split is mostly one package's look
            logger.warning(
                "%s is %.0f%% one source (%s); fewer --folds give more varied splits",
                split, 100 * largest, max(held, key=counts.get) or "(top level)",
            )  # fmt: skip


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
    report.dropped.setdefault(reason, []).append({"file": original, "why": detail})


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
    candidates: list[_Candidate], report: PrepareReport, prefer: frozenset[str] = frozenset()
) -> list[tuple[_Candidate, str]]:
    """Drop near-duplicates -> [(kept photo, split key of its scene)].

    Of the copies of one photo the largest is kept, one from a source in `prefer` first.
    """
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
        best = max(
            members,
            key=lambda k: (
                candidates[k].source in prefer,
                candidates[k].width * candidates[k].height,
                -k,
            ),
        )
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
