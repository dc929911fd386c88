"""Bringing the working-size colour up to the photo's full size.

The network predicts ab on a small copy of the photo; the output joins that colour with the
photo's own full-resolution L. Two ways to upsample the colour:
- "bilinear": plain bilinear interpolation. Colour is smooth, but at a sharp edge it spreads a
  few full-size pixels across (a red coat's colour bleeds onto the wall behind it).
- "guided": the fast guided filter (He & Sun, "Fast Guided Filter", 2015) with the L channel as
  the guide. In every small window of the working-size photo, ab is fitted as a linear function
  of L (ab ~ A * L + B); A and B vary slowly, so they are upsampled bilinearly and applied to the
  full-resolution L, and the colour's edges follow the luminance edges of the full photo. Where L
  is flat, A is near 0 and the colour is its own window average: for the smooth colour networks
  predict, the bilinear result. `eps` sets which L variations count
  as edges (in (L/100)^2 units: 1e-3 means a local L standard deviation of about 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

UPSAMPLING = ("bilinear", "guided")
GUIDED_RADIUS, GUIDED_EPS = 2, 1e-3  # window of 5x5 working-size pixels


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, (C, H, W) -> (C, H, W); windows are cut at the borders."""
    k = 2 * radius + 1
    return F.avg_pool2d(x[None], k, stride=1, padding=radius, count_include_pad=False)[0]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]


def upsample_ab(
    ab: torch.Tensor,
    L_small: torch.Tensor,
    L_full: torch.Tensor,
    *,
    mode: str = "bilinear",
    radius: int = GUIDED_RADIUS,
    eps: float = GUIDED_EPS,
) -> torch.Tensor:
    """Working-size ab (2, h, w) -> full-size ab (2, H, W), guided by L (1, h, w) and (H, W).

    L in [0, 100], ab in Lab units.
    """
    size = tuple(L_full.shape[-2:])
    if mode == "bilinear":
        return _resize(ab, size)
    if mode != "guided":
        raise ValueError(f"upsampling {mode!r}: use one of {UPSAMPLING}")
    guide = L_small / 100.0  # (1, h, w)
    mean_I, mean_p = _box(guide, radius), _box(ab, radius)
    cov_Ip = _box(guide * ab, radius) - mean_I * mean_p  # (2, h, w)
    var_I = _box(guide * guide, radius) - mean_I * mean_I  # (1, h, w)
    A = cov_Ip / (var_I + eps)
    B = mean_p - A * mean_I
    A, B = _resize(_box(A, radius), size), _resize(_box(B, radius), size)  # (2, H, W)
    return A * (L_full.reshape(1, *size) / 100.0) + B
