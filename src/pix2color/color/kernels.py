"""Compiled per-pixel loops for the full-resolution join (numba): colour to full size, Lab to sRGB.

The join turns every pixel of a photo from Lab to sRGB. Written as numpy array operations it
took about 50 passes over each band (each a temporary array), 15 ns a pixel: most of a 12 MP
photo's time. Here each pixel is done in one pass, in float32 with the same formulas and the
same order of operations as color.py's reference (`lab_to_rgb_t`), so the pixels do not depend
on the band and stay within one level of the reference. The loops release the GIL (`nogil`),
so the join's band threads run them on every CPU; they are compiled on first use and cached
next to this file (or in numba's user cache where that is not writable), so only a machine's
first call pays the compile (about a second).

Only color.py calls these: it owns the constants (the matrix, the white point, the tables).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_C = np.float32(0.2068966)  # 6/29: where f's cube meets its linear segment near black
_C3 = _C * _C * _C
_INV_KAPPA = np.float32(1 / 7.787)
_INV116, _OFF116 = np.float32(1 / 116), np.float32(16 / 116)
_INV500, _INV200 = np.float32(1 / 500), np.float32(-1 / 200)
_ZERO, _HALF, _ONE = np.float32(0), np.float32(0.5), np.float32(1)
_TOP16 = np.float32(65535)
_SRGB_KNEE, _SRGB_SLOPE = np.float32(0.0031308), np.float32(12.92)
_SRGB_A, _SRGB_B, _SRGB_GAMMA = np.float32(1.055), np.float32(0.055), np.float32(1 / 2.4)


@njit(nogil=True, cache=True, inline="always")
def _f_inv(f):  # pragma: no cover - compiled
    # max(f, c)^3 + (min(f, c) - c) / kappa: the cube above c, the tangent line below it
    hi = max(f, _C)
    lo = min(f, _C)
    return hi * hi * hi + (lo - _C) * _INV_KAPPA


@njit(nogil=True, cache=True, inline="always")
def _xyz(L, a, b):  # pragma: no cover - compiled
    """One Lab pixel -> (X / Xn, Y, Z / Zn)."""
    fy = L * _INV116 + _OFF116
    fx = a * _INV500 + fy
    fz = max(b * _INV200 + fy, _ZERO)
    return _f_inv(fx), _f_inv(fy), _f_inv(fz)


# Each row goes in two loops: the arithmetic into a row of table indices or levels (no look-ups
# or interleaved stores, so the compiler runs it 8 pixels at a time), then the look-ups and the
# interleaved RGB stores. In one loop the look-ups kept it a pixel at a time: 3x slower.


@njit(nogil=True, cache=True, inline="always")
def _row_to_rgb8(L, a, b, m, table, index, out):  # pragma: no cover - compiled
    """One row: Lab (W,) each -> 8-bit sRGB into out (W, >=3), through `index` (3, W) int32."""
    W = L.shape[0]
    for j in range(W):
        X, Y, Z = _xyz(L[j], a[j], b[j])
        for c in range(3):  # out of gamut: clipped
            v = X * m[c, 0] + Y * m[c, 1] + Z * m[c, 2] + _HALF
            index[c, j] = np.int32(min(max(v, _ZERO), _TOP16))
    for j in range(W):
        out[j, 0] = table[index[0, j]]
        out[j, 1] = table[index[1, j]]
        out[j, 2] = table[index[2, j]]


@njit(nogil=True, cache=True)
def lab_to_rgb8(L, a, b, m, table, out):  # pragma: no cover - compiled
    """L, a, b (R, W) float32; m (3, 3) float32: XYZ/white -> linear RGB times 65535; table
    (65536,) uint8: linear level -> 8-bit sRGB; out (R, W, >=3) uint8, channels 0-2 written."""
    R, W = L.shape
    index = np.empty((3, W), np.int32)
    for i in range(R):
        _row_to_rgb8(L[i], a[i], b[i], m, table, index, out[i])


@njit(nogil=True, cache=True)
def lab_to_rgb16(L, a, b, m, out):  # pragma: no cover - compiled
    """As lab_to_rgb8 with m for linear RGB in [0, 1]; out (R, W, >=3) uint16 (the exact sRGB
    curve: a table fine enough for 65536 levels near black would be millions of entries)."""
    R, W = L.shape
    level = np.empty((3, W), np.uint16)
    for i in range(R):
        Li, ai, bi = L[i], a[i], b[i]
        for j in range(W):
            X, Y, Z = _xyz(Li[j], ai[j], bi[j])
            for c in range(3):
                lin = min(max(X * m[c, 0] + Y * m[c, 1] + Z * m[c, 2], _ZERO), _ONE)
                if lin > _SRGB_KNEE:
                    s = _SRGB_A * lin**_SRGB_GAMMA - _SRGB_B
                else:
                    s = _SRGB_SLOPE * lin
                level[c, j] = np.uint16(min(max(s * _TOP16 + _HALF, _ZERO), _TOP16))
        oi = out[i]
        for j in range(W):
            oi[j, 0] = level[0, j]
            oi[j, 1] = level[1, j]
            oi[j, 2] = level[2, j]


_HUNDRED = np.float32(100)


@njit(nogil=True, cache=True)
def upsample_lab_to_rgb8(  # pragma: no cover - compiled
    L, small, x0, x1, wx0, wx1, y0, y1, wy0, wy1, guided, m, table, out
):
    """The join of a band in one pass: full-resolution L (R, W) float32 and the working-size
    colour `small` (C, h, w) float32 -> 8-bit sRGB into out (R, W, >=3) uint8.

    `small` is ab (C = 2), or the guided filter's A and B (C = 4: A_a, A_b, B_a, B_b, applied
    as A * L / 100 + B); it is upsampled bilinearly with the column taps x0, x1, wx0, wx1 (W,)
    and the band's row taps y0, y1, wy0, wy1 (R,) (upsample.bilinear_taps), along the width
    first, in the order and float32 rounding of upsample.RowUpsampler, then turned into sRGB as
    lab_to_rgb8 does: the same pixels as the two steps apart, without (C, R, W) buffers.
    """
    R, W = L.shape
    C = small.shape[0]
    # along the width first, once for each source row the band reads (a few: the working size
    # is far smaller than the photo), as RowUpsampler does
    lo, hi = y0[0], y1[R - 1] + 1
    across = np.empty((C, hi - lo, W), np.float32)
    for c in range(C):
        for k in range(hi - lo):
            src, dst = small[c, lo + k], across[c, k]
            for j in range(W):
                dst[j] = src[x0[j]] * wx0[j] + src[x1[j]] * wx1[j]
    ab = np.empty((2, W), np.float32)
    index = np.empty((3, W), np.int32)
    for i in range(R):
        r0, r1, v0, v1 = y0[i] - lo, y1[i] - lo, wy0[i], wy1[i]
        Li = L[i]
        for c in range(2):  # then along the height, and the guided filter's A * L / 100 + B
            row, s0, s1 = ab[c], across[c, r0], across[c, r1]
            if guided:
                t0, t1 = across[c + 2, r0], across[c + 2, r1]
                for j in range(W):
                    row[j] = (s0[j] * v0 + s1[j] * v1) * (Li[j] / _HUNDRED) + (
                        t0[j] * v0 + t1[j] * v1
                    )
            else:
                for j in range(W):
                    row[j] = s0[j] * v0 + s1[j] * v1
        _row_to_rgb8(Li, ab[0], ab[1], m, table, index, out[i])
