"""RGB <-> Lab and the network's value scaling, in torch (batches, training, metrics).

The network sees L scaled to [-1, 1] and predicts ab scaled to about [-1, 1] (the pix2pix
reference's `L/50 - 1`, `ab/110`). The conversion is scikit-image's sRGB / D65 CIELAB, written
in torch so that batches and full-resolution photos convert fast; tests hold it to
scikit-image's `rgb2lab` / `lab2rgb`. The numbers live in constants.py; the full-resolution
rows (numpy, no torch) in rows.py.
"""

from __future__ import annotations

import numpy as np
import torch

from pix2color.color.constants import (  # noqa: F401 - the scaling constants' public home
    AB_SCALE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    L_SCALE,
    L_SHIFT,
    RGB2XYZ,
    WHITE,
)
from pix2color.color.constants import (
    EPS as _EPS,
)
from pix2color.color.constants import (
    KAPPA as _KAPPA,
)

_RGB2XYZ = torch.from_numpy(RGB2XYZ)  # (3, 3) float64
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE = torch.from_numpy(WHITE)


def _as_tensor(x: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    if isinstance(x, np.ndarray):
        if x.dtype == np.uint8:
            return torch.from_numpy(x.astype(np.float32) / 255.0), True
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), True
    return x, False


def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Multiply the channel axis (dim -3) of (..., 3, H, W) by a 3x3 matrix."""
    return torch.einsum("ij,...jhw->...ihw", m.to(x.device, x.dtype), x)


def srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> linear light."""
    return torch.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    """Linear light -> sRGB, clipped to [0, 1]."""
    c = c.clamp(min=0)
    return torch.where(c > 0.0031308, 1.055 * c ** (1 / 2.4) - 0.055, 12.92 * c).clamp(0, 1)


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, t.clamp(min=_EPS) ** (1 / 3), _KAPPA * t + 16 / 116)


def _f_inv(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA)


def rgb_to_lab_t(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> (..., 3, H, W) Lab, L in [0, 100]."""
    xyz = _mix(srgb_to_linear(rgb), _RGB2XYZ) / _WHITE.to(rgb.device, rgb.dtype).view(3, 1, 1)
    fx, fy, fz = _f(xyz).unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb_t(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> (..., 3, H, W) RGB in [0, 1] (out-of-gamut colours clipped)."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, (fy - b / 200).clamp(min=0)
    xyz = _f_inv(torch.stack([fx, fy, fz], dim=-3)) * _WHITE.to(lab.device, lab.dtype).view(3, 1, 1)
    return linear_to_srgb(_mix(xyz, _XYZ2RGB))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB, uint8 or float in [0, 1] -> (H, W, 3) float32 Lab (L in [0, 100])."""
    t, _ = _as_tensor(rgb)
    return rgb_to_lab_t(t.permute(2, 0, 1)).permute(1, 2, 0).numpy()


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(H, W, 3) Lab -> (H, W, 3) float32 RGB in [0, 1]."""
    t, _ = _as_tensor(lab)
    return lab_to_rgb_t(t.permute(2, 0, 1)).permute(1, 2, 0).numpy()


def gray_to_L(gray: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Grey level in [0, 1] (an sRGB value with R = G = B), any shape -> Lab L in [0, 100].

    For R = G = B the luminance Y equals the linearised grey level, so no matrix is needed and
    16-bit photos keep their full precision.
    """
    g, _ = _as_tensor(gray) if isinstance(gray, np.ndarray) else (gray, False)
    return 116 * _f(srgb_to_linear(g.clamp(0, 1))) - 16


def normalize_L(L):
    """L in [0, 100] -> [-1, 1]."""
    return L / L_SCALE - L_SHIFT


def denormalize_L(L):
    """[-1, 1] -> L in [0, 100]."""
    return (L + L_SHIFT) * L_SCALE


def normalize_ab(ab):
    """ab in about [-110, 110] -> about [-1, 1]."""
    return ab / AB_SCALE


def denormalize_ab(ab):
    """About [-1, 1] -> ab in about [-110, 110]."""
    return ab * AB_SCALE


def lab_tensor_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Network-scale L (B, 1, H, W) and ab (B, 2, H, W) -> RGB (B, 3, H, W) in [0, 1]."""
    lab = torch.cat([denormalize_L(L.float()), denormalize_ab(ab.float())], dim=1)
    return lab_to_rgb_t(lab)


def rgb_to_network(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (..., 3, H, W) in [0, 1] -> network-scale (L (..., 1, H, W), ab (..., 2, H, W))."""
    lab = rgb_to_lab_t(rgb.float())
    return normalize_L(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])


def table_values() -> dict[str, np.ndarray]:
    """The full-resolution join's look-up tables as these torch formulas give them: the L of
    every 8-bit and 16-bit grey level, and the linear light of every 8-bit sRGB level. rows.py
    reads them from color/tables.npz, written once from this (`python -m pix2color.color.rows`),
    so that the join needs no torch and gives the same pixels on every machine."""

    def gray(bits: int) -> np.ndarray:
        top = (1 << bits) - 1
        g = np.arange(top + 1, dtype=np.float32) / np.float32(top)
        return gray_to_L(torch.from_numpy(g)).numpy()

    srgb8 = srgb_to_linear(torch.arange(256, dtype=torch.float32) / 255.0).numpy()
    return {"grey_L_8": gray(8), "grey_L_16": gray(16), "srgb8_linear": srgb8}
