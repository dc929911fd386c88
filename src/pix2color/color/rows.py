"""The full-resolution rows of a photo in numpy (no torch): grey levels to L, Lab to sRGB.

A 12 MP photo's join (grey to L, Lab to RGB, 8-bit packing) took 98 % of the colouring time in
torch on whole images (FINDINGS.md): every step made a full-size float copy. These functions
work on a band of rows (R, W) that stays in the CPU cache and replace the costly per-pixel
powers by tables where the input has few levels. The tables are data (tables.npz, written from
lab.py's torch formulas by `python -m pix2color.color.rows`), so that the join needs no torch.

Lab to sRGB runs in one of two ways that give the same bytes (tests/test_rows.py): a compiled
pass a pixel (kernels.py, numba: fast on big photos, but numba costs about a second to load in
a fresh process), or the same float32 arithmetic in the same order as numpy array operations
(about 15 ns a pixel: the faster way for a photo or two of a few megapixels). `compiled()`
chooses.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from pix2color.color.constants import EPS, KAPPA, RGB2XYZ, WHITE

TABLES = Path(__file__).with_name("tables.npz")
_SRGB8_TO_16 = 65535  # the linear-light table's steps (65536 entries): far finer than 8 bits
# From this many pixels a photo's join is compiled (numba), below it numpy does it, unless numba
# is loaded already (a server, a folder of big scans): loading numba costs about a second.
COMPILE_FROM_PIXELS = 8_000_000

f32 = np.float32


@functools.cache
def _tables() -> dict[str, np.ndarray]:
    with np.load(TABLES) as z:
        return {k: z[k] for k in z.files}


def gray_L_table(bits: int) -> np.ndarray:
    """L of every grey level of a `bits`-bit photo (8 or 16), (2**bits,) float32: what
    lab.gray_to_L gives for level / (2**bits - 1)."""
    return _tables()[f"grey_L_{bits}"]


def srgb8_linear_table() -> np.ndarray:
    """(256,) float32: the linear light of each 8-bit sRGB level, as lab.rgb_to_lab_t has it."""
    return _tables()["srgb8_linear"]


@functools.cache
def linear_srgb8_table() -> np.ndarray:
    """(65536,) uint8: the 8-bit sRGB level of linear light i / 65535 (rounded as rgb * 255 + 0.5).

    Indexing it with round(linear * 65535) is off from the exact formula by at most 0.025 of an
    8-bit level (where the sRGB curve is steepest, near black), so it changes a pixel by one level
    only when the exact value sits within that distance of a rounding boundary.
    """
    c = np.arange(_SRGB8_TO_16 + 1, dtype=np.float64) / _SRGB8_TO_16
    s = np.clip(np.where(c > 0.0031308, 1.055 * c ** (1 / 2.4) - 0.055, 12.92 * c), 0, 1)
    return (s * 255.0 + 0.5).astype(np.uint8)


def levels_to_L(levels: np.ndarray) -> np.ndarray:
    """Grey levels (R, W): uint8, uint16, or float32 in [0, 1] -> L (R, W) float32 in [0, 100]."""
    if levels.dtype == np.uint8:
        return gray_L_table(8).take(levels)
    if levels.dtype == np.uint16:
        return gray_L_table(16).take(levels)
    import torch  # a float photo (a 32-bit TIFF): the exact powers, pixel by pixel

    from pix2color.color.lab import gray_to_L

    return gray_to_L(torch.from_numpy(np.ascontiguousarray(levels, np.float32))).numpy()


def rgb8_to_L(rgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB (R, W, 3) uint8 -> Lab L (R, W) float32, as rgb_to_lab_t's L (float rounding)."""
    lin = srgb8_linear_table().take(rgb)  # (R, W, 3) float32
    wr, wg, wb = RGB2XYZ[1].astype(np.float32)  # Y's row; the white's Y is 1
    Y = lin[..., 0] * wr  # (R, W); products, not `lin @ row`: BLAS threads
    Y += lin[..., 1] * wg
    Y += lin[..., 2] * wb
    # L = 116 f(Y) - 16, with f's linear segment near black
    f = np.where(Y > EPS, np.cbrt(np.maximum(Y, EPS)), KAPPA * Y + np.float32(16 / 116))
    return (116 * f - 16).astype(np.float32, copy=False)


@functools.cache
def xyz_to_linear(scale: float) -> np.ndarray:
    """(3, 3) float32: (X / Xn, Y, Z / Zn) -> linear RGB times `scale` (the white point, the
    matrix and the scale in one)."""
    return (np.linalg.inv(RGB2XYZ) * WHITE[None, :] * scale).astype(np.float32)


def rgb8_tables() -> tuple[np.ndarray, np.ndarray]:
    """What the 8-bit passes need: the (3, 3) XYZ -> linear matrix scaled to the table's steps,
    and the (65536,) linear level -> sRGB table."""
    return xyz_to_linear(_SRGB8_TO_16), linear_srgb8_table()


def compiled(pixels: int) -> bool:
    """Whether a join of this many pixels runs compiled (numba) rather than in numpy."""
    return pixels >= COMPILE_FROM_PIXELS or "numba" in sys.modules


def lab_rows_to_rgb8(L: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Lab rows (R, W) float32 -> 8-bit sRGB into `out` (R, W, 3) uint8.

    Within one level of lab_to_rgb_t's RGB * 255 + 0.5 truncated; the same pixels whatever the
    band, compiled or not. The linear light is rounded into a 65536-step table.
    """
    L, a, b = (np.ascontiguousarray(x, np.float32) for x in (L, a, b))
    if compiled(L.size):
        from pix2color.color import kernels  # numba: loaded on the first compiled join

        kernels.lab_to_rgb8(L, a, b, *rgb8_tables(), out)
    else:
        rows_to_rgb8(L, a, b, *rgb8_tables(), out)


def lab_rows_to_rgb16(L: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Lab rows (R, W) float32 -> 16-bit sRGB into `out` (R, W, 3) uint16 (the exact curve;
    always compiled: a 16-bit scan is big, and numpy's power differs in the last bit)."""
    from pix2color.color import kernels

    kernels.lab_to_rgb16(
        *(np.ascontiguousarray(x, np.float32) for x in (L, a, b)), xyz_to_linear(1.0), out
    )


# ---- kernels.py's 8-bit pass as numpy array operations: the same float32 steps in order
_C = f32(0.2068966)  # 6/29: where f's cube meets its linear segment near black
_INV_KAPPA = f32(1 / 7.787)
_INV116, _OFF116 = f32(1 / 116), f32(16 / 116)
_INV500, _INV200 = f32(1 / 500), f32(-1 / 200)
_ZERO, _HALF, _TOP16, _HUNDRED = f32(0), f32(0.5), f32(65535), f32(100)


def _f_inv(f: np.ndarray) -> np.ndarray:
    hi, lo = np.maximum(f, _C), np.minimum(f, _C)
    return hi * hi * hi + (lo - _C) * _INV_KAPPA


def rows_to_rgb8(L, a, b, m, table, out) -> None:
    """kernels.lab_to_rgb8 in numpy: L, a, b (R, W) float32 -> out (R, W, >=3) uint8."""
    fy = L * _INV116 + _OFF116
    fx = a * _INV500 + fy
    fz = np.maximum(b * _INV200 + fy, _ZERO)
    X, Y, Z = _f_inv(fx), _f_inv(fy), _f_inv(fz)
    for c in range(3):  # out of gamut: clipped
        v = X * m[c, 0] + Y * m[c, 1] + Z * m[c, 2] + _HALF
        out[..., c] = table[np.minimum(np.maximum(v, _ZERO), _TOP16).astype(np.int32)]


if __name__ == "__main__":  # write tables.npz from lab.py's torch formulas
    from pix2color.color.lab import table_values

    np.savez_compressed(TABLES, **table_values())
    print(f"wrote {TABLES}", file=sys.stderr)
