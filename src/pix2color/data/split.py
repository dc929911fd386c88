"""How `data prepare` splits the kept photos: by scene, by source, or keeping an earlier plan.

A scene is one photo, or the photos that look alike or that a source names as one scene
(`dedupe.group_scenes`); its split key is the same for all of its photos, so a scene never lands
in two splits.

- by scene (`split_by="scene"`, the default): the split of a kept photo is a function of its
  scene's perceptual hash alone (`split_of`), so a re-run gives the same split.
- by source (`split_by="source"`): whole source packages (the first folder under src) go to
  val and to test, so that both measure photos from sources never seen in training, which is
  what users bring (`plan_source_split` says how they are chosen). Inside the training
  sources, scenes chosen by hash as above form `test_in`, the in-source test split, so that
  in-source and out-of-source figures can be compared. No source and no scene is in two splits.
- by source, keeping an earlier plan (`KeptSplit`, from an earlier run's prepare_report.json):
  the val and test sources are exactly that run's, every other source trains (sources added
  since included), so that adding photo sources leaves the held-out splits, and every figure
  measured on them, as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pix2color.data.unionfind import UnionFind
from pix2color.errors import UsageError

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
IN_SOURCE_TEST = "test_in"  # held-out scenes of the training sources (split_by="source")
SOURCE_SPLITS = (*SPLITS, IN_SOURCE_TEST)
SPLIT_BY = ("scene", "source")
# A source (or a group of sources that share a scene) may be held out only if it holds at most
# this share of the test split aimed at (test_fraction of the kept photos): a big package would
# make the split mostly one game's or one photographer's look, so it stays in training.
MAX_SOURCE_SHARE = 0.4


def split_of(key: str, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split for a stable key: sha1(key) mapped to [0, 1) against the fractions."""
    u = int(hashlib.sha1(key.encode()).hexdigest()[:15], 16) / 16**15
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def check_split_by(split_by: str, val_fraction: float, test_fraction: float) -> None:
    """Raise UsageError for an unknown split_by, or a source split without val or test."""
    if split_by not in SPLIT_BY:
        raise UsageError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    if split_by == "source" and (val_fraction <= 0 or test_fraction <= 0):
        raise UsageError(
            "--split-by source holds out whole sources for val and for test: give both "
            f"fractions above 0 (got val {val_fraction}, test {test_fraction})"
        )


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


def split_in_plan(plan: SourcePlan, source: str, key: str, test_fraction: float) -> str:
    """The split of a photo of `source` with scene key `key` under a source plan."""
    held_out = plan.split_of_source[source]
    if held_out != "train":
        return held_out
    # the in-source test: the scenes the scene split would put in test
    return IN_SOURCE_TEST if split_of(key, 0.0, test_fraction) == "test" else "train"


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
    links = UnionFind(len(names))
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
