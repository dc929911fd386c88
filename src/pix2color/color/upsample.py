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

from typing import TYPE_CHECKING

import numpy as np

from pix2color.color import rows
from pix2color.color.resample import box_mean

if TYPE_CHECKING:
    import torch

UPSAMPLING = ("bilinear", "guided")
# chosen on the out-of-source validation photos by the rule in experiments/UPSAMPLING.md (it
# replaced the guided default of experiments/STUDY.md: guided raised FID, KID and LPIPS)
DEFAULT_UPSAMPLING = "bilinear"
GUIDED_RADIUS, GUIDED_EPS = 2, 1e-3  # window of 5x5 working-size pixels


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
    import torch
    import torch.nn.functional as F

    def resize(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]

    size = tuple(L_full.shape[-2:])
    _check_mode(mode)
    if mode == "bilinear":
        return resize(ab)
    A, B = guided_coefficients(ab.numpy(), L_small.numpy(), radius, eps)
    A, B = resize(torch.from_numpy(A)), resize(torch.from_numpy(B))  # (2, H, W)
    return A * (L_full.reshape(1, *size) / 100.0) + B


def _check_mode(mode: str) -> None:
    if mode not in UPSAMPLING:
        raise ValueError(f"upsampling {mode!r}: use one of {UPSAMPLING}")


def guided_coefficients(
    ab: np.ndarray, L_small: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's A and B (2, h, w) float32 at the working size: ab ~ A * L / 100 + B,
    from ab (2, h, w) and L (1, h, w) float32."""
    ab, L_small = np.asarray(ab, np.float32), np.asarray(L_small, np.float32)
    guide = L_small / np.float32(100)  # (1, h, w)
    mean_I, mean_p = box_mean(guide, radius), box_mean(ab, radius)
    cov_Ip = box_mean(guide * ab, radius) - mean_I * mean_p  # (2, h, w)
    var_I = box_mean(guide * guide, radius) - mean_I * mean_I  # (1, h, w)
    A = cov_Ip / (var_I + np.float32(eps))
    B = mean_p - A * mean_I
    return box_mean(A, radius), box_mean(B, radius)


def bilinear_taps(n_in: int, n_out: int, start: int = 0, stop: int | None = None):
    """Source indices and weights of output samples start..stop-1 when n_in samples are resized
    to n_out by F.interpolate(mode="bilinear", align_corners=False): (i0, i1, w0, w1), each
    (stop - start,), i as intp and w as float32, computed in float32 as PyTorch does, so that a
    band of output rows gets exactly the sampling positions of the whole image.
    """
    stop = n_out if stop is None else stop
    scale = np.float32(n_in) / np.float32(n_out)
    src = scale * (np.arange(start, stop, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    src = np.maximum(src, np.float32(0))  # PyTorch clamps positions before the first sample
    i0 = np.minimum(src.astype(np.intp), n_in - 1)  # floor, src >= 0
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, i1, np.float32(1) - w1, w1


class RowUpsampler:
    """Bilinear upsampling of (C, h, w) to (C, H, W), one band of output rows at a time.

    The band's output equals those rows of F.interpolate(align_corners=False) on the whole image
    (to float rounding): the same sampling positions, from just the source rows the band needs.
    Buffers are (C, R, W) for a band of R rows, never (C, H, W).
    """

    def __init__(self, small: np.ndarray, size: tuple[int, int]) -> None:
        self.small = np.ascontiguousarray(small, dtype=np.float32)  # (C, h, w)
        self.H, self.W = size
        x0, x1, wx0, wx1 = bilinear_taps(self.small.shape[2], self.W)
        self.x0, self.x1, self.wx0, self.wx1 = x0, x1, wx0, wx1

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Output rows r0..r1-1 -> (C, r1 - r0, W) float32."""
        y0, y1, wy0, wy1 = bilinear_taps(self.small.shape[1], self.H, r0, r1)
        s0, s1 = int(y0[0]), int(y1[-1]) + 1  # the source rows this band reads
        src = self.small[:, s0:s1]  # (C, k, w), k about R * h / H + 2
        # along the width first, on the k source rows only (PyTorch's order too)
        across = np.take(src, self.x0, axis=2)  # (C, k, W), C-contiguous (src[..., x0] is not)
        across *= self.wx0
        right = np.take(src, self.x1, axis=2)
        right *= self.wx1
        across += right
        # then along the height: each output row mixes two of those rows (plain products: an
        # einsum or a matmul here was several times slower with torch's threads around)
        top, bottom = across[:, y0 - s0], across[:, y1 - s0]  # (C, R, W) each
        top *= wy0[:, None]
        bottom *= wy1[:, None]
        top += bottom
        return top


class BandColor:
    """Full-size ab, one band of rows at a time: upsample_ab's result without (2, H, W) buffers.

    `ab` (2, h, w) and `L_small` (1, h, w) are the working-size colour and luminance; `rows`
    takes the band's full-resolution L (R, W) in [0, 100] and gives its ab (2, R, W) float32.
    """

    def __init__(
        self,
        ab: np.ndarray,
        L_small: np.ndarray,
        size: tuple[int, int],
        *,
        mode: str = "bilinear",
        radius: int = GUIDED_RADIUS,
        eps: float = GUIDED_EPS,
    ) -> None:
        _check_mode(mode)
        self.mode = mode
        ab, L_small = np.asarray(ab, np.float32), np.asarray(L_small, np.float32)
        if mode == "guided":  # A and B are upsampled, then applied to the full-size L
            small = np.concatenate(guided_coefficients(ab, L_small, radius, eps))  # (4, h, w)
        else:
            small = ab
        self.up = RowUpsampler(small, size)

    def rgb8(self, r0: int, r1: int, L: np.ndarray, out: np.ndarray) -> None:
        """Full-resolution L rows (R, W) float32 -> 8-bit sRGB into `out` (R, W, 3 or 4) uint8,
        in one compiled pass for a big photo (kernels.upsample_lab_to_rgb8: no band ab buffers),
        or for a small one `rows` then rows.rows_to_rgb8 in numpy: the same bytes."""
        up = self.up
        L = np.ascontiguousarray(L, np.float32)
        if not rows.compiled(up.H * up.W):  # numpy: the same float32 steps, so the same bytes
            a, b = self.rows(r0, r1, L)
            rows.rows_to_rgb8(L, a, b, *rows.rgb8_tables(), out)
            return
        from pix2color.color import kernels  # numba: loaded on the first compiled join

        y0, y1, wy0, wy1 = bilinear_taps(up.small.shape[1], up.H, r0, r1)
        kernels.upsample_lab_to_rgb8(
            L, up.small, up.x0, up.x1, up.wx0, up.wx1,
            y0, y1, wy0, wy1, self.mode == "guided", *rows.rgb8_tables(), out,
        )  # fmt: skip

    def rows(self, r0: int, r1: int, L: np.ndarray) -> np.ndarray:
        """Full-resolution L rows (R, W) -> their ab (2, R, W) float32."""
        up = self.up.rows(r0, r1)
        if self.mode == "bilinear":
            return up
        A, B = up[:2], up[2:]  # (2, R, W) each
        A *= L / np.float32(100)
        A += B
        return A
