"""Image statistics shared by data preparation and metrics: colourfulness and perceptual hashes."""

from __future__ import annotations

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

    The dot product of two signatures is their correlation: prepare's near-duplicate and scene
    test, and evaluate's leakage guard, compare photos by it.
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
