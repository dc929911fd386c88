"""Training and validation pairs (L, ab), made on the fly from colour photos of any size.

Photos are decoded once and held in RAM as 8-bit RGB with the short side resized to
`load_short_side` (600 photos at 256 px take about 150 MB). Each item is a fresh random resized
crop (and flip), converted to Lab; the grey input is computed, never stored. Randomness comes
from a generator seeded by (seed, epoch, index), so a run resumed after a crash sees exactly
the crops an uninterrupted run would have seen, whatever the number of workers or processes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

from pix2color.color import rgb_to_network
from pix2color.data.images import IMAGE_EXTENSIONS, ImageError, load_rgb
from pix2color.errors import UsageError

log = logging.getLogger(__name__)


class MissingSplitError(UsageError, FileNotFoundError):
    """A folder without the split asked for; the message says how to make one."""


def split_files(root: str | Path, split: str) -> list[Path]:
    """The photos of one split of a prepared folder: manifest.csv order, else sorted files.

    split: "train", "val", "test", or "test_in" (the in-source test split of a folder prepared
    with --split-by source, whose "val" and "test" hold sources never seen in training).
    """
    root = Path(root)
    manifest = root / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as f:
            files = [root / row["path"] for row in csv.DictReader(f) if row["split"] == split]
    else:
        folder = root / split
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
    if not files:
        raise MissingSplitError(
            f"{root}: no {split} photos found (expected {root / split}/ or a manifest.csv); "
            f"make one with `pix2color data prepare PHOTOS {root}`"
            + (" --split-by source" if split == "test_in" else "")
        )
    return files


def _resize_short_side(rgb: np.ndarray, short: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = short / min(h, w)
    if abs(s - 1) < 1e-6:
        return rgb
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC, reducing_gap=3))


def load_photos(files: list[Path], short_side: int) -> list[np.ndarray]:
    """Decode and downscale photos; unreadable ones are skipped with a warning naming them."""
    photos = []
    for f in files:
        try:
            photos.append(_resize_short_side(load_rgb(f), short_side))
        except ImageError as e:
            log.warning("skipping %s", e)
    if not photos:
        raise FileNotFoundError(f"none of the {len(files)} photos could be read")
    return photos


def centre_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8: the centre square resized (bicubic).

    The one crop protocol of validation (training) and of `pix2color evaluate`.
    """
    h, w = rgb.shape[:2]
    s = min(h, w)
    x0, y0 = (w - s) // 2, (h - s) // 2
    img = Image.fromarray(rgb).resize(
        (size, size), Image.Resampling.BICUBIC, box=(x0, y0, x0 + s, y0 + s)
    )
    return np.asarray(img)


def _to_pair(rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1) / 255.0
    L, ab = rgb_to_network(t)
    return L, ab  # (1, H, W), (2, H, W)


class RandomCrops(Dataset):
    """Training pairs: random resized crop (area `scale`, aspect 3/4..4/3) + flip -> (L, ab)."""

    def __init__(
        self,
        photos: list[np.ndarray],
        *,
        crop: int = 128,
        scale: tuple[float, float] = (0.3, 1.0),
        flip: bool = True,
        seed: int = 0,
        degrade: float = 0.0,
    ) -> None:
        assert 0 < scale[0] <= scale[1] <= 1, f"scale must be within (0, 1], got {scale}"
        assert 0 <= degrade <= 1, f"degrade is a probability, got {degrade}"
        self.photos, self.crop, self.scale, self.flip, self.seed = photos, crop, scale, flip, seed
        self.degrade = degrade
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops `__getitem__` returns."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> L (1, crop, crop) in [-1, 1], ab (2, crop, crop) in about [-1, 1]."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        rgb = self.photos[i]
        h, w = rgb.shape[:2]
        area = h * w * rng.uniform(*self.scale)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = min(w, max(8, round(math.sqrt(area * ratio))))
        ch = min(h, max(8, round(math.sqrt(area / ratio))))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = Image.fromarray(rgb).resize(
            (self.crop, self.crop), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)
        )
        out = np.asarray(img)
        if self.flip and rng.random() < 0.5:
            out = out[:, ::-1]
        L, ab = _to_pair(out)
        if self.degrade and rng.random() < self.degrade:
            L = old_print(L, rng)
        return L, ab


def old_print(L: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A grey input (1, H, W) in [-1, 1] aged like a scanned old print: faded contrast, soft
    focus, film grain and JPEG blocks, each with its own chance and strength.

    Only the network's input is aged; its target stays the photo's true colour, so the model
    learns to see through the damage that users' scans carry.
    """
    x = (L[0].numpy() + 1) * 127.5  # (H, W): L* (0-100) on a 0-255 scale
    if rng.random() < 0.6:  # faded: contrast pulled towards a paper-grey middle, lifted blacks
        c = rng.uniform(0.6, 0.95)
        x = x * c + (1 - c) * rng.uniform(90, 170)
    if rng.random() < 0.5:  # soft focus
        img = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
        x = np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5))), np.float32)
    if rng.random() < 0.5:  # film grain
        x = x + rng.normal(0.0, rng.uniform(2, 8), size=x.shape)
    if rng.random() < 0.4:  # JPEG blocks
        buf = io.BytesIO()
        Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(
            buf, "JPEG", quality=int(rng.integers(25, 75))
        )
        x = np.asarray(Image.open(buf), np.float32)
    x = np.clip(x, 0, 255).astype(np.float32)
    return torch.from_numpy(x / 127.5 - 1)[None]  # (1, H, W)


class CenterCrops(Dataset):
    """Validation pairs: the centre square of each photo resized to `size` -> (L, ab)."""

    def __init__(self, photos: list[np.ndarray], *, size: int = 256) -> None:
        self.photos, self.size = photos, size

    @classmethod
    def from_files(cls, files: list[Path], *, size: int = 256, short_side: int = 0) -> CenterCrops:
        """Validation crops of photo files, loaded first at `max(size, short_side)` px on their
        short side (training's `data.load_short_side`): training's validation and
        `pix2color calibrate` build them here, so both score the very same crops.
        """
        return cls(load_photos(files, max(size, short_side)), size=size)

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> L (1, size, size), ab (2, size, size)."""
        return _to_pair(centre_square(self.photos[i], self.size))
