"""Image statistics shared by data preparation, metrics and evaluation: colourfulness, perceptual
hashes and the same-scene rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# ITU-R BT.601 luma weights, the grey level Pillow's convert("L") uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of (H, W, 3) RGB on 0-255: 0 grey, 100+ vivid."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"colorfulness needs an (H, W, 3) RGB array, got shape {rgb.shape}")
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(std + 0.3 * mean)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luma in 0-255."""
    return rgb.astype(np.float32) @ _LUMA


def thumbnail(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> grey (h, w) float32 in 0-255 for size = (w, h), by area averaging."""
    gray = Image.fromarray(np.clip(to_gray(rgb), 0, 255).astype(np.float32), mode="F")
    # Box averaging makes the thumbnail (almost) independent of the original's resolution,
    # which is what lets the same scene at two sizes hash alike.
    return np.asarray(gray.resize(size, Image.Resampling.BOX), dtype=np.float32)


def scene_signature(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (256,) float32 zero-mean unit-norm 16x16 grey thumbnail.

    The dot product of two signatures is their correlation, which `same_scene` compares.
    """
    t = thumbnail(rgb, (16, 16)).ravel().astype(np.float64)
    t -= t.mean()
    return (t / max(float(np.linalg.norm(t)), 1e-6)).astype(np.float32)


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash of (H, W, 3) uint8 RGB: bit = left > right on a 9x8 grey thumbnail."""
    small = thumbnail(rgb, (9, 8))  # (8, 9)
    bits = (small[:, :-1] > small[:, 1:]).ravel()  # (64,)
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


# The same-scene rule, by which `data prepare` keeps a scene in one split and the leakage check
# of `evaluate` finds a test photo's scene among the training photos: dHashes within
# SCENE_HAMMING bits, aspect ratios within SCENE_ASPECT of each other, and 16x16 grey thumbnails
# that correlate at SCENE_CORRELATION or more (the same scene at two sizes gives ~1.0; different
# landscapes with similar layouts can reach ~0.93).
SCENE_HAMMING = 10
SCENE_ASPECT = 0.05
SCENE_CORRELATION = 0.90


@dataclass(frozen=True)
class Look:
    """What the same-scene rule compares of a photo."""

    dhash: int
    aspect: float  # width / height
    signature: np.ndarray  # scene_signature()

    @classmethod
    def of(cls, rgb: np.ndarray) -> Look:
        """The look of an (H, W, 3) uint8 RGB photo."""
        return cls(dhash(rgb), rgb.shape[1] / rgb.shape[0], scene_signature(rgb))


def same_scene(a: Look, b: Look) -> float | None:
    """The correlation of two photos' signatures if they show the same scene, else None."""
    if hamming(a.dhash, b.dhash) > SCENE_HAMMING or abs(a.aspect / b.aspect - 1) > SCENE_ASPECT:
        return None
    correlation = float(a.signature @ b.signature)
    return correlation if correlation >= SCENE_CORRELATION else None


def scene_candidates(h: int, hashes: np.ndarray) -> list[int]:
    """Indices of the dHashes in `hashes` (uint64) within SCENE_HAMMING bits of `h`, ascending.

    The first test of `same_scene` for many photos at once: only these need the whole rule.
    """
    distance = np.bitwise_count(np.uint64(h) ^ hashes)
    return np.nonzero(distance <= SCENE_HAMMING)[0].tolist()
