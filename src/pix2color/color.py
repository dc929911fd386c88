"""RGB <-> Lab and the network's value scaling: the only place that knows these constants.

The network sees L scaled to [-1, 1] and predicts ab scaled to about [-1, 1] (the pix2pix
reference's `L/50 - 1`, `ab/110`). The conversion is scikit-image's sRGB / D65 CIELAB, written
in torch so that batches and full-resolution photos convert fast; tests hold it to
scikit-image's `rgb2lab` / `lab2rgb`.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

L_SCALE, L_SHIFT = 50.0, 1.0  # L in [0, 100] -> L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # ab in about [-110, 110] -> ab / 110 in about [-1, 1]
# RGB in [0, 1] -> (RGB - mean) / std: the input convention of ImageNet-trained encoders
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# sRGB (linear) -> XYZ under D65, and the D65 white point: scikit-image's values
_RGB2XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPS, _KAPPA = 0.008856, 7.787  # CIE's linear segment of f(t) near black


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


# ---- Full-resolution rows: numpy, float32, one band of rows at a time --------------------------
# A 12 MP photo's join (grey to L, Lab to RGB, 8-bit packing) took 98 % of the colouring time in
# torch on whole images (FINDINGS.md): every step made a full-size float copy. These functions
# work on a band of rows (R, W) that stays in the CPU cache, replace the costly per-pixel powers
# by tables where the input has few levels, and release the GIL, so two bands run on two cores.

_SRGB8_TO_16 = 65535  # the linear-light table's steps (65536 entries): far finer than 8 bits


@functools.cache
def grey_L_table(bits: int) -> np.ndarray:
    """L of every grey level of a `bits`-bit photo, (2**bits,) float32: gray_to_L(level / max).

    Exactly what gray_to_L gives for the same float32 grey value, so a table look-up replaces
    its two powers per pixel (8 and 16 bits: 256 or 65536 entries).
    """
    top = (1 << bits) - 1
    g = np.arange(top + 1, dtype=np.float32) / np.float32(top)
    return gray_to_L(torch.from_numpy(g)).numpy()


@functools.cache
def _srgb8_linear_table() -> np.ndarray:
    """(256,) float32: the linear light of each 8-bit sRGB level, as rgb_to_lab_t computes it."""
    return srgb_to_linear(torch.arange(256, dtype=torch.float32) / 255.0).numpy()


@functools.cache
def _linear_srgb8_table() -> np.ndarray:
    """(65536,) uint8: the 8-bit sRGB level of linear light i / 65535 (rounded as rgb * 255 + 0.5).

    Indexing it with round(linear * 65535) is off from the exact formula by at most 0.025 of an
    8-bit level (where the sRGB curve is steepest, near black), so it changes a pixel by one level
    only when the exact value sits within that distance of a rounding boundary.
    """
    lin = torch.arange(_SRGB8_TO_16 + 1, dtype=torch.float64) / _SRGB8_TO_16
    return (linear_to_srgb(lin) * 255.0 + 0.5).to(torch.uint8).numpy()


def levels_to_L(levels: np.ndarray) -> np.ndarray:
    """Grey levels (R, W): uint8, uint16, or float32 in [0, 1] -> L (R, W) float32 in [0, 100]."""
    if levels.dtype == np.uint8:
        return grey_L_table(8).take(levels)
    if levels.dtype == np.uint16:
        return grey_L_table(16).take(levels)
    return gray_to_L(torch.from_numpy(np.ascontiguousarray(levels, np.float32))).numpy()


def rgb8_to_L(rgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB (R, W, 3) uint8 -> Lab L (R, W) float32, as rgb_to_lab_t's L (float rounding)."""
    lin = _srgb8_linear_table().take(rgb)  # (R, W, 3) float32
    wr, wg, wb = _RGB2XYZ[1].numpy().astype(np.float32)  # Y's row; the white's Y is 1
    Y = lin[..., 0] * wr  # (R, W); products, not `lin @ row`: BLAS threads (see below)
    Y += lin[..., 1] * wg
    Y += lin[..., 2] * wb
    # L = 116 f(Y) - 16, with f's linear segment near black
    f = np.where(Y > _EPS, np.cbrt(np.maximum(Y, _EPS)), _KAPPA * Y + np.float32(16 / 116))
    return (116 * f - 16).astype(np.float32, copy=False)


@functools.cache
def _xyz_to_linear(scale: float) -> np.ndarray:
    """(3, 3) float32: (X / Xn, Y, Z / Zn) -> linear RGB times `scale` (the white point, the
    matrix and the scale in one)."""
    return (_XYZ2RGB.numpy() * _WHITE.numpy()[None, :] * scale).astype(np.float32)


def rgb8_tables() -> tuple[np.ndarray, np.ndarray]:
    """What the compiled 8-bit loops need: the (3, 3) XYZ -> linear matrix scaled to the
    table's steps, and the (65536,) linear level -> sRGB table."""
    return _xyz_to_linear(_SRGB8_TO_16), _linear_srgb8_table()


def lab_rows_to_rgb8(L: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Lab rows (R, W) float32 -> 8-bit sRGB into `out` (R, W, 3) uint8.

    Within one level of lab_to_rgb_t's RGB * 255 + 0.5 truncated (the old whole-image packing);
    the same pixels whatever the band, so a photo comes out the same in bands or whole. One
    compiled pass a pixel (kernels.py), the linear light rounded into a 65536-step table.
    """
    from pix2color import kernels  # numba: imported on the first join, not with this module

    kernels.lab_to_rgb8(
        *(np.ascontiguousarray(x, np.float32) for x in (L, a, b)), *rgb8_tables(), out
    )


def lab_rows_to_rgb16(L: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Lab rows (R, W) float32 -> 16-bit sRGB into `out` (R, W, 3) uint16 (the exact curve)."""
    from pix2color import kernels

    kernels.lab_to_rgb16(
        *(np.ascontiguousarray(x, np.float32) for x in (L, a, b)), _xyz_to_linear(1.0), out
    )
