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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

from pix2color.color.lab import denormalize_ab, denormalize_L, rgb_to_network
from pix2color.errors import UsageError
from pix2color.guide.maps import no_reference, point_maps, reference_histogram
from pix2color.photo import IMAGE_EXTENSIONS, ImageError, load_rgb

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


# ---- guided colour (HintUNet): simulated colour points and reference histograms ------------


@dataclass(frozen=True)
class GuidanceSimulation:
    """How training simulates a person's guidance from the truth (the data.hint_* keys).

    Points: none with chance `p_zero`, else a count log-uniform in 1..`max_points` (as many
    crops with 1-3 points as with 10-50); positions uniform over the crop; radius uniform in
    0..`max_radius` pixels; colour the truth's mean ab over the point's disc. Reference: with
    chance `p_reference` a histogram of the crop's own truth, or, with chance `p_other` of
    those, of another random crop of the same photo (a reference that is similar, not equal).
    """

    p_zero: float = 0.125
    max_points: int = 50
    max_radius: int = 4
    p_reference: float = 0.3
    p_other: float = 0.5


def simulate_points(
    ab: torch.Tensor, rng: np.random.Generator, n: int, radii: np.ndarray
) -> tuple[list[tuple[float, float, float]], np.ndarray]:
    """ab (2, h, w) in Lab units, n points with `radii` (n,) -> ([(x, y, radius)], ab (n, 2)):
    uniform positions and the truth's mean ab over each disc."""
    h, w = ab.shape[-2:]
    xs, ys = rng.integers(0, w, n), rng.integers(0, h, n)
    centres, colors = [], np.zeros((n, 2), np.float32)
    for k, (x, y, r) in enumerate(zip(xs, ys, radii, strict=True)):
        y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, h), max(x - r, 0), min(x + r + 1, w)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = torch.from_numpy((xx - x) ** 2 + (yy - y) ** 2 <= r * r)
        colors[k] = ab[:, y0:y1, x0:x1][:, disc].mean(dim=1).numpy()
        centres.append((float(x), float(y), float(r)))
    return centres, colors


def guidance_for(
    L: torch.Tensor, ab: torch.Tensor, centres, colors, reference: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network-scale L (1, h, w) and points -> (point maps (6, h, w), reference (65,))."""
    maps = point_maps(denormalize_L(L)[0].numpy(), centres, colors)
    return maps, reference if reference is not None else no_reference()


class GuidedCrops(RandomCrops):
    """Training crops with simulated guidance: (L, ab, point maps, reference)."""

    def __init__(self, photos: list[np.ndarray], *, guidance: GuidanceSimulation, **kwargs) -> None:
        super().__init__(photos, **kwargs)
        self.guidance = guidance

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        """-> L (1, c, c), ab (2, c, c), point maps (6, c, c), reference (65,)."""
        L, ab = super().__getitem__(i)
        s = self.guidance
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])  # apart from the crop's
        ab_lab = denormalize_ab(ab)
        n = 0 if rng.random() < s.p_zero else int(np.exp(rng.uniform(0, np.log(s.max_points + 1))))
        n = min(n, s.max_points)
        centres, colors = simulate_points(ab_lab, rng, n, rng.integers(0, s.max_radius + 1, n))
        reference = None
        if rng.random() < s.p_reference:
            if rng.random() < s.p_other:
                rgb = self.photos[i]
                h, w = rgb.shape[:2]
                ch, cw = int(rng.integers(h // 3, h + 1)), int(rng.integers(w // 3, w + 1))
                y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                _, other = _to_pair(rgb[y0 : y0 + ch : 4, x0 : x0 + cw : 4])
                reference = reference_histogram(denormalize_ab(other))
            else:
                reference = reference_histogram(ab_lab)
        return (L, ab, *guidance_for(L, ab, centres, colors, reference))


class GuidedCenterCrops(CenterCrops):
    """Validation crops with a FIXED guidance: `n_points` points of radius 2 per photo, seeded
    by its index (the same for every epoch, run and model), no reference."""

    def __init__(self, photos: list[np.ndarray], *, size: int = 256, n_points: int = 10) -> None:
        super().__init__(photos, size=size)
        self.n_points = n_points

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        """-> L (1, s, s), ab (2, s, s), point maps (6, s, s), reference (65,) (zeros)."""
        L, ab = super().__getitem__(i)
        rng = np.random.default_rng([i, 13])
        n = self.n_points
        centres, colors = simulate_points(denormalize_ab(ab), rng, n, np.full(n, 2))
        return (L, ab, *guidance_for(L, ab, centres, colors, None))
