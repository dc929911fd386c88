"""Scenes and copies among the photos `data prepare` keeps, so that no scene spans two splits.

A scene is one photo, or the photos that look alike by `stats.same_scene`, or that the source's
SOURCE.json names as one scene ("scenes": {file: label}); photos of one scene are kept in one
split. Those of one scene whose thumbnails correlate at DUP_CORRELATION or more are one photo
(resized, recompressed): only the largest is kept, the others dropped as "duplicate".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2color.data.report import PrepareReport, drop
from pix2color.data.stats import Look, same_scene, scene_candidates
from pix2color.data.unionfind import UnionFind

logger = logging.getLogger(__name__)

DUP_CORRELATION = 0.97


@dataclass
class Candidate:
    """One readable photo's statistics from the first pass."""

    original: str  # path relative to the photo root, posix
    source: str
    width: int
    height: int
    colorfulness: float
    look: Look  # of the photo as it will be written, with the original's aspect ratio
    scene: str = ""  # a scene named by the source (SOURCE.json "scenes"), "" if none


def group_scenes(
    candidates: list[Candidate], report: PrepareReport, prefer: frozenset[str] = frozenset()
) -> list[tuple[Candidate, str]]:
    """Drop near-duplicates -> [(kept photo, split key of its scene)].

    Of the copies of one photo the largest is kept, one from a source in `prefer` first.
    """
    n = len(candidates)
    if n == 0:
        return []
    hashes = np.array([c.look.dhash for c in candidates], dtype=np.uint64)
    scene = UnionFind(n)  # shots of one scene: kept, same split
    copy = UnionFind(n)  # the same photo (resized, recompressed): keep one
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
                drop(report, "duplicate", c.original, f"{c.width}x{c.height}, {detail}")
    # The split key of a scene is its smallest dHash: the same for every photo in it.
    scene_key = {}
    for members in scene.groups():
        key = f"{min(candidates[k].look.dhash for k in members):016x}"
        scene_key.update(dict.fromkeys(members, key))
    return [(candidates[k], scene_key[k]) for k in sorted(keep)]


def drop_held_out_scenes(
    kept: list[tuple[Candidate, str]], held_out: frozenset[str], report: PrepareReport
) -> list[tuple[Candidate, str]]:
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
            drop(report, "held_out_scene", cand.original, detail)
        else:
            result.append((cand, key))
    return result


def read_scenes(root: Path) -> dict[str, str]:
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
