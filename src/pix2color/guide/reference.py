"""A reference photo's palette, given to the automatic colour: classical, for every model.

"Colour it like this photo": the result should take the reference's colours without copying
its content. The reference says nothing about *where* things are, so no pixel of it is pasted
anywhere; what it gives is how colour goes with lightness. Per luminance band (BANDS soft bands
over L, Gaussian of width BAND_SIGMA), the reference's mean and spread of a and b are measured,
and so are the automatic colour's; each working-size pixel's ab is then moved from the
automatic colour's statistics of its band to the reference's:

    ab' = mean_ref(k) + (ab - mean_auto(k)) * clip(std_ref(k) / std_auto(k), MIN_RATIO, MAX_RATIO)

blended over the bands by each pixel's own L (Reinhard et al. 2001's colour transfer, made
lightness-dependent: a reference with blue bright parts and brown dark parts makes the bright
parts of the photo bluer and the dark parts browner). The result is `ab + STRENGTH * (ab' - ab)`.
It is a smooth function of the pixel's L and automatic ab, so it keeps the automatic colour's
edges and its variation inside an object (no smoothing pass is needed); a band the photo or the
reference hardly has borrows its statistics from the whole photo (shrinkage), so a few stray
pixels cannot set a band's colour. L is never touched: the photo keeps its luminance.

Deterministic and cheap: a few numpy passes over the working size (about 5 ms for 256x192).
A guided-colour network (HintUNet) reads the reference's ab histogram instead (guidance.py);
the Palette carries it too. Settings were chosen on the validation split only
(bench/bench_reference.py, experiments/HINTS.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from pix2color.color.lab import rgb_to_lab_t
from pix2color.errors import UsageError
from pix2color.guide.maps import reference_histogram

BANDS = 10  # soft luminance bands, centres evenly over L 0..100
BAND_SIGMA = 8.0  # L units: each band's Gaussian width
SHRINK = 0.05  # a band with under this share of the pixels leans on the whole photo's statistics
MIN_RATIO, MAX_RATIO = 0.5, 2.0  # how much the spread of ab may shrink or grow
MAX_SHIFT = 10.0  # Lab units: the most a band's mean colour may move (a wrong reference
# tints, it does not repaint: experiments/HINTS.md)
STRENGTH = 1.0  # 0: automatic colour; 1: the reference's statistics in full
REFERENCE_SIDE = 256  # the reference is measured on a copy this long at most
MIN_CHROMA = 2.0  # mean chroma (Lab units) under which a reference "has no colour"


class ReferencePhotoError(UsageError):
    """A reference photo that cannot be used (no colour, unreadable); the message says why."""


def _centres() -> np.ndarray:
    return np.linspace(0.0, 100.0, BANDS, dtype=np.float64)


def _band_weights(L: np.ndarray) -> np.ndarray:
    """L (N,) in [0, 100] -> (BANDS, N) soft band memberships, each pixel's summing to 1."""
    d = (L[None, :] - _centres()[:, None]) / BAND_SIGMA
    w = np.exp(-0.5 * d * d)
    return w / np.maximum(w.sum(axis=0, keepdims=True), 1e-12)


def band_statistics(L: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L (N,) in [0, 100], ab (2, N) in Lab units -> (mean (BANDS, 2), std (BANDS, 2)) per
    luminance band, each band shrunk toward the whole set's statistics by its share of pixels."""
    L = np.asarray(L, np.float64)
    ab = np.asarray(ab, np.float64)
    w = _band_weights(L)  # (K, N)
    mass = w.sum(axis=1)  # (K,)
    g_mean = ab.mean(axis=1)  # (2,)
    g_var = ab.var(axis=1)
    s1 = w @ ab.T  # (K, 2)
    s2 = w @ (ab * ab).T
    prior = SHRINK * L.size  # the whole set counts as this many pixels in every band
    mean = (s1 + prior * g_mean) / (mass[:, None] + prior)
    second = (s2 + prior * (g_var + g_mean**2)) / (mass[:, None] + prior)
    std = np.sqrt(np.maximum(second - mean**2, 1e-6))
    return mean, std


@dataclass(frozen=True)
class Palette:
    """A reference photo's colour, as the transfer and a guided-colour network read it:
    per luminance band the mean and spread of ab (BANDS, 2), and the ab histogram (65,)."""

    mean: np.ndarray
    std: np.ndarray
    histogram: torch.Tensor
    name: str = "reference"  # the photo's file name, for the record (not its path)

    def to_json(self) -> str:
        """What the web store keeps of a reference (a few hundred bytes, no pixels)."""
        return json.dumps(
            {"name": self.name, "bands": BANDS, "mean": np.round(self.mean, 3).tolist(),
             "std": np.round(self.std, 3).tolist(),
             "histogram": [round(float(v), 6) for v in self.histogram.double()]},
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Palette:
        data: dict[str, Any] = json.loads(text)
        if data.get("bands") != BANDS:
            raise ReferencePhotoError(
                f"a stored reference with {data.get('bands')} bands; this version uses {BANDS}: "
                "give the reference photo again"
            )
        return cls(
            np.asarray(data["mean"], np.float64), np.asarray(data["std"], np.float64),
            torch.tensor(data["histogram"], dtype=torch.float32), str(data.get("name", "")),
        )  # fmt: skip


def palette_of(rgb: np.ndarray | Image.Image, name: str = "reference") -> Palette:
    """A colour photo ((H, W, 3) uint8 RGB or a PIL image) -> its Palette. A photo without
    colour (grey, sepia-free black and white) is refused: it has no palette to give."""
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, np.uint8))
    image = image.convert("RGB")
    if max(image.size) > REFERENCE_SIDE:
        image = image.copy()
        image.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE), Image.Resampling.BILINEAR)
    t = torch.from_numpy(np.asarray(image, np.float64) / 255.0).permute(2, 0, 1)  # (3, h, w)
    lab = rgb_to_lab_t(t).reshape(3, -1).numpy()  # (3, N)
    if np.hypot(lab[1], lab[2]).mean() < MIN_CHROMA:
        raise ReferencePhotoError(
            f"{name}: the reference photo has no colour (it is black and white or nearly); "
            "give a colour photo"
        )
    mean, std = band_statistics(lab[0], lab[1:])
    hist = reference_histogram(torch.from_numpy(lab[1:]))
    # rounded as the web store keeps them: a result re-coloured later gets the same colour
    return Palette(
        np.round(mean, 3), np.round(std, 3), hist.double().round(decimals=6).float(), name
    )


def transfer(
    ab: torch.Tensor,
    L: torch.Tensor | np.ndarray,
    palette: Palette,
    *,
    strength: float = STRENGTH,
) -> torch.Tensor:
    """Working-size automatic ab (2, h, w) in Lab units, L (h, w) or (1, h, w) in [0, 100],
    a reference's Palette -> ab (2, h, w) moved to the reference's colour statistics per
    luminance band (module docstring). strength 0 gives `ab` itself."""
    if strength == 0:
        return ab
    h, w = ab.shape[-2:]
    L_np = np.asarray(L, np.float64).reshape(-1)
    auto = ab.double().numpy().reshape(2, -1)  # (2, N)
    mean_a, std_a = band_statistics(L_np, auto)
    ratio = np.clip(palette.std / std_a, MIN_RATIO, MAX_RATIO)  # (K, 2)
    shift = palette.mean - mean_a  # (K, 2): each band's mean colour moves by at most MAX_SHIFT
    norm = np.linalg.norm(shift, axis=1, keepdims=True)
    target = mean_a + shift * np.minimum(1.0, MAX_SHIFT / np.maximum(norm, 1e-9))
    wts = _band_weights(L_np)  # (K, N)
    # sum_k w_k (mean_r + (ab - mean_a) * ratio) = sum_k w_k mean_r + ab * sum_k w_k ratio - ...
    offset = (target - mean_a * ratio).T @ wts  # (2, N)
    scale = ratio.T @ wts  # (2, N)
    moved = offset + auto * scale
    out = auto + strength * (moved - auto)
    return torch.from_numpy(out.reshape(2, h, w)).to(ab.dtype)
