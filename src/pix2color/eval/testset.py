"""The photos an evaluation scores: a prepared folder's test split, or two folders of
predictions and truths matched by name (`evaluate --pred --truth`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.data.dataset import MissingSplitError, centre_square, split_files
from pix2color.errors import UsageError
from pix2color.photo import IMAGE_EXTENSIONS, load_rgb

log = logging.getLogger(__name__)


class EvaluationError(UsageError):
    """Photos that cannot be evaluated as given; the message says why and what to do."""


# ---------------------------------------------------------------- the photos
@dataclass
class TestSet:
    """The truth photos of one evaluation, with their grey inputs."""

    names: list[str]  # the path inside the folder, without extension (posix)
    truth: list[np.ndarray]  # (H, W, 3) uint8 RGB
    gray: list[np.ndarray] = field(default_factory=list)  # (H, W) uint8 luma

    def __post_init__(self) -> None:
        if not self.gray:
            self.gray = [np.asarray(Image.fromarray(t).convert("L")) for t in self.truth]


def _name(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


def load_test_split(root: Path, size: int, split: str = "test") -> tuple[TestSet, list[Path]]:
    """The photos of a split of a prepared folder, centre-cropped to size -> (set, their files).

    "test": the held-out test split (out-of-source for a folder prepared with --split-by
    source); "test_in": that folder's in-source test split (held-out scenes of the training
    sources).
    """
    files = split_files(root, split)
    truth = [centre_square(load_rgb(f), size) for f in files]
    names = [_name(f, root / split) if (root / split) in f.parents else f.stem for f in files]
    return TestSet(names, truth), files


def has_split(root: Path, split: str) -> bool:
    """Whether a prepared folder has photos in `split` (manifest.csv, else the folder)."""
    try:
        split_files(root, split)
    except MissingSplitError:
        return False
    return True


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
