"""Resampling at the working size in numpy: the antialiased downscale and the box mean.

Both give, to the bit, what PyTorch's CPU kernels give (`F.interpolate(mode="bilinear",
antialias=True)` and `F.avg_pool2d(count_include_pad=False)`), so that colouring a photo needs no
torch where onnxruntime runs the network, and a photo comes out the same whichever runs it.

The antialiased downscale is separable (along the width, then along the height). Each output
sample mixes the input samples under a triangle filter as wide as the scale, with weights
normalised to sum 1 (Pillow's and PyTorch's filter). The order of the float32 arithmetic is
PyTorch's compiled loop's, which decides the last bit: the first product, then the taps four at
a time as rounded products added in turn, then the remaining (at most three) taps each as one
fused multiply-add (emulated in float64, where the product of two float32 values is exact).
Checked against torch on 82 size pairs (tests/test_resample.py holds it to 1e-5 on any
machine, since another CPU may run another build of torch's loop).
"""

from __future__ import annotations

import functools

import numpy as np

f32, f64 = np.float32, np.float64


@functools.lru_cache(maxsize=64)
def antialias_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start (n_out,) intp, taps (n_out,) intp, weights (n_out, K) float32) of n_in -> n_out."""
    scale = f32(n_in / n_out)
    support = scale if scale >= 1 else f32(1)  # the triangle's half-width, input samples
    invscale = f32(1 / f64(scale)) if scale >= 1 else f32(1)
    K = int(np.ceil(support)) * 2 + 1
    i = np.arange(n_out)
    centre = (f64(scale) * (i + 0.5)).astype(f32)
    start = np.maximum(((centre - support).astype(f64) + 0.5).astype(np.int64), 0)
    stop = np.minimum(((centre + support).astype(f64) + 0.5).astype(np.int64), n_in)
    taps = np.clip(stop - start, 0, K)
    j = np.arange(K)
    x = (((j[None] + start[:, None]).astype(f32) - centre[:, None]).astype(f64) + 0.5) * invscale
    x = np.abs(x.astype(f32))
    w = np.where(x < 1, 1 - x.astype(f64), 0).astype(f32)
    w[j[None] >= taps[:, None]] = 0
    total = np.zeros(n_out, f32)
    for k in range(K):  # summed in order, as the weights are in float32
        total += w[:, k]
    w = np.divide(w, total[:, None], out=w, where=total[:, None] != 0)
    return start.astype(np.intp), taps.astype(np.intp), w


def downscale_last(x: np.ndarray, n_out: int) -> np.ndarray:
    """(..., n_in) float32 -> (..., n_out) float32 along the last axis, antialiased bilinear."""
    x = np.asarray(x, f32)
    start, taps, w = antialias_taps(x.shape[-1], n_out)
    out = np.empty((*x.shape[:-1], n_out), f32)
    for n in np.unique(taps):  # outputs with the same number of taps go together
        sel = np.flatnonzero(taps == n)
        s, ws = start[sel], w[sel]
        acc = x[..., s] * ws[:, 0]
        j = 1
        while n - j >= 4:  # four at a time: rounded products, added in turn
            for k in range(j, j + 4):
                acc += x[..., s + k] * ws[:, k]
            j += 4
        for k in range(j, n):  # the rest: one fused multiply-add each
            acc = (x[..., s + k].astype(f64) * ws[:, k] + acc).astype(f32)
        out[..., sel] = acc
    return out


def downscale(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 -> (h, w): along the width, then along the height."""
    h, w = shape
    narrow = downscale_last(x, w) if x.shape[1] != w else np.asarray(x, f32)
    return np.ascontiguousarray(downscale_last(np.ascontiguousarray(narrow.T), h).T)


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, (C, H, W) float32 -> (C, H, W); windows are cut at the
    borders (avg_pool2d with count_include_pad=False): each sum taken row by row, in float32."""
    x = np.asarray(x, f32)
    C, H, W = x.shape
    pad = np.pad(x, ((0, 0), (radius, radius), (radius, radius)))  # zeros add nothing
    total = np.zeros_like(x)
    k = 2 * radius + 1
    for dy in range(k):
        for dx in range(k):
            total += pad[:, dy : dy + H, dx : dx + W]
    rows = np.minimum(np.arange(H) + radius, H - 1) - np.maximum(np.arange(H) - radius, 0) + 1
    cols = np.minimum(np.arange(W) + radius, W - 1) - np.maximum(np.arange(W) - radius, 0) + 1
    return total / (rows[:, None] * cols[None, :]).astype(f32)
