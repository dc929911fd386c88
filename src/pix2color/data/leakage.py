"""Test photos that are also in the training split of a prepared folder (train/test leakage).

A leak is the same file (sha256), the same decoded pixels, or the same scene by the rule
`data prepare` keeps each scene in one split by (`stats.same_scene`). Scores on leaked photos
are inflated, so `pix2color evaluate` refuses them unless told otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pix2color.data.stats import Look, dhash, same_scene, scene_candidates
from pix2color.photo import IMAGE_EXTENSIONS, ImageError, load_rgb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leak:
    """A test photo that is also in the training split."""

    test: str
    train: str
    how: str


def training_photos(root: Path) -> list[dict[str, str]] | None:
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
        out.append(
            {
                "path": f.relative_to(root).as_posix(),
                "sha256": _sha256(f),
                "dhash": f"{dhash(rgb):016x}",
            }
        )
    return out


def find_leaks(root: Path, test_files: list[Path]) -> list[Leak] | None:
    """The test photos also in the training split of `root`; None if it has no training split."""
    train = training_photos(root)
    if train is None:
        return None
    by_sha = {r["sha256"]: r["path"] for r in train}
    hashes = np.array([int(r["dhash"], 16) for r in train], dtype=np.uint64)
    looks: dict[int, tuple[np.ndarray, Look] | None] = {}

    def train_look(k: int) -> tuple[np.ndarray, Look] | None:
        """(pixels, look) of training photo k, decoded once; None if it cannot be read."""
        if k not in looks:
            try:
                rgb = load_rgb(root / train[k]["path"])
            except ImageError:
                looks[k] = None  # listed but unreadable: only its hashes can be compared
            else:  # the listed dHash: the one the first test of the rule was made with
                looks[k] = rgb, replace(Look.of(rgb), dhash=int(hashes[k]))
        return looks[k]

    leaks = []
    for f in test_files:
        test_rel = f.relative_to(root).as_posix() if root in f.parents else str(f)
        sha = _sha256(f)
        if sha in by_sha:
            leaks.append(Leak(test_rel, by_sha[sha], "same file"))
            continue
        rgb = load_rgb(f)
        look = Look.of(rgb)
        for k in scene_candidates(look.dhash, hashes):
            other = train_look(k)
            if other is None:
                continue
            if other[0].shape == rgb.shape and np.array_equal(other[0], rgb):
                leaks.append(Leak(test_rel, train[k]["path"], "same pixels"))
                break
            correlation = same_scene(look, other[1])
            if correlation is not None:
                how = f"same scene (correlation {correlation:.2f})"
                leaks.append(Leak(test_rel, train[k]["path"], how))
                break
    return leaks


def leak_message(leaks: list[Leak]) -> str:
    """One line naming the leaked photos (the first 10) and their training twins."""
    shown = "; ".join(f"{x.test} = {x.train} ({x.how})" for x in leaks[:10])
    more = f"; and {len(leaks) - 10} more" if len(leaks) > 10 else ""
    return f"{len(leaks)} test photo(s) are also in the training split: {shown}{more}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
