"""Colour points spread over the objects they sit on: edge-aware propagation at the working size.

The network's automatic colour stays everywhere the points say nothing. What spreads is each
point's *difference* from the automatic colour, d = point ab - automatic ab, found as the d
(2, h, w) that minimises

    sum over neighbours i~j of w_ij (d_i - d_j)^2        smooth, except across L's edges
  + pull * sum_i d_i^2                                   far from any point, back to automatic
  + stiffness * sum over patch pixels (d_i - t_i)^2      the points themselves

with Levin, Lischinski & Weiss's (2004, "Colorization using optimization") affinity on the
photo's L: w_ij = exp(-(L_i - L_j)^2 / (2 sigma^2)), L scaled to [0, 1], 4 neighbours. Across a
strong edge w is near 0, so a point's colour fills its own object and stops at its outline
instead of spreading as a blob. The minimiser solves one sparse symmetric positive-definite
system (Laplacian + pull + stiffness) d = stiffness * t per ab channel.

A direct sparse solver took about 1 s for 256x256. Here: conjugate gradients with a Jacobi
preconditioner, coarse to fine: the system is solved on a pyramid of 2x2-averaged copies, the
coarsest (about 32 pixels) to convergence, and each finer level starts from the coarser
solution, so the few iterations it runs only have to fix fine detail: about 50-70 ms for
256x256 on one CPU, within about 0.5 ab units of the exact solution on average
(bench/bench_hints.py, tests/test_propagate.py).
numpy only: the arrays are small and every step is a whole-array operation.

`pull` is given for a 256-pixel long side and scaled with the pixel area, so a point's reach is
the same fraction of the photo at any working size. The defaults were chosen on the validation
split (bench/tune_hints.py), never on the test photos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pix2color.color import rgb_to_lab_t

SIGMA = 0.05  # L edge scale, L in [0, 1]
PULL = 1e-3  # weight of "stay automatic" per pixel, for a 256-pixel long side
STIFFNESS = 50.0  # weight of "be the point's colour" per patch pixel (near a hard constraint)
REFERENCE_SIDE = 256
DIRECT_PIXELS = 20_000  # the pyramid stops at this size, solved directly (about 30 ms)
FINE_ITERATIONS, TOLERANCE = 30, 1e-4


def color_ab(colors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """[(r, g, b) 0-255] -> (N, 2) float32 Lab ab of each colour (its lightness is dropped)."""
    if not colors:
        return np.zeros((0, 2), np.float32)
    rgb = torch.tensor(colors, dtype=torch.float64).T[:, :, None] / 255.0  # (3, N, 1)
    return rgb_to_lab_t(rgb)[1:, :, 0].T.float().numpy()


def patches(
    centres: Sequence[tuple[float, float, float]], ab: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Points (x, y, radius) in working pixels with colours ab (N, 2) -> (weight (h, w), target
    ab (2, h, w)): each point's disc, at least its nearest pixel; where discs overlap, the
    target is their mean."""
    h, w = shape
    weight = np.zeros((h, w), np.float32)
    total = np.zeros((2, h, w), np.float32)
    for (x, y, r), colour in zip(centres, ab, strict=True):
        cx, cy = min(max(round(x), 0), w - 1), min(max(round(y), 0), h - 1)
        ri = int(np.ceil(r))
        y0, y1, x0, x1 = max(cy - ri, 0), min(cy + ri + 1, h), max(cx - ri, 0), min(cx + ri + 1, w)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
        disc[cy - y0, cx - x0] = True  # a radius under a working pixel is still one pixel
        weight[y0:y1, x0:x1] += disc
        total[:, y0:y1, x0:x1] += disc * colour[:, None, None]
    target = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    return np.minimum(weight, 1.0), target


def affinities(L: np.ndarray, sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """L (h, w) in [0, 100] -> the neighbours' weights: wx (h, w-1) between each pixel and the
    one on its right, wy (h-1, w) and the one below; 1 where L is flat, near 0 across edges."""
    g = np.asarray(L, np.float32) * np.float32(1 / 100)
    scale = np.float32(-0.5 / sigma**2)
    return np.exp(np.square(g[:, 1:] - g[:, :-1]) * scale), np.exp(
        np.square(g[1:] - g[:-1]) * scale
    )


def _coarser(wx: np.ndarray, wy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weights between 2x2 blocks: the mean of the two fine weights crossing between them,
    so that an edge that cuts the fine grid cuts the coarse one too (an average of L would blur
    it away or invent one inside a block)."""
    h, w = wx.shape[0], wy.shape[1]
    hc, wc = (h + 1) // 2, (w + 1) // 2
    across = wx[:, 1::2][:, : wc - 1]  # (h, wc-1): the fine edges between blocks J and J+1
    if h % 2:
        across = np.concatenate([across, across[-1:]])
    down = wy[1::2][: hc - 1]  # (hc-1, w)
    if w % 2:
        down = np.concatenate([down, down[:, -1:]], axis=1)
    return 0.5 * (across[::2] + across[1::2]), 0.5 * (down[:, ::2] + down[:, 1::2])


class _Grid:
    """The system's matrix on one level: A = Laplacian(w) + diag(pull + stiffness * m)."""

    def __init__(self, wx: np.ndarray, wy: np.ndarray, mask: np.ndarray, pull, stiffness):
        self.wx, self.wy = wx, wy
        diag = np.full(mask.shape, pull, np.float32)
        diag += stiffness * mask
        diag[:, 1:] += self.wx
        diag[:, :-1] += self.wx
        diag[1:] += self.wy
        diag[:-1] += self.wy
        self.diag = diag
        self.inv_diag = 1 / diag  # the Jacobi preconditioner

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A @ x for x (2, h, w)."""
        y = self.diag * x
        y[:, :, :-1] -= self.wx * x[:, :, 1:]
        y[:, :, 1:] -= self.wx * x[:, :, :-1]
        y[:, :-1] -= self.wy * x[:, 1:]
        y[:, 1:] -= self.wy * x[:, :-1]
        return y

    def solve_direct(self, b: np.ndarray) -> np.ndarray:
        """A^-1 b for b (2, h, w) by a sparse LU factorisation (one for both channels)."""
        h, w = self.diag.shape
        n = h * w
        idx = np.arange(n).reshape(h, w)
        rows = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
        cols = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
        off = np.concatenate([self.wx.ravel(), self.wy.ravel()]).astype(np.float64)
        A = sp.csc_matrix(
            (np.concatenate([self.diag.ravel().astype(np.float64), -off, -off]),
             (np.concatenate([idx.ravel(), rows, cols]),
              np.concatenate([idx.ravel(), cols, rows]))),
            shape=(n, n),
        )  # fmt: skip
        # the matrix is symmetric: an ordering of A + A^T and diagonal pivots keep the fill low
        lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
        x = lu.solve(b.reshape(2, n).T.astype(np.float64))  # (n, 2)
        return np.ascontiguousarray(x.T.reshape(2, h, w), dtype=np.float32)

    def solve(self, b: np.ndarray, x: np.ndarray, iterations: int, tol: float) -> np.ndarray:
        """Preconditioned conjugate gradients from x, per channel, until the residual is under
        tol times |b| or after `iterations` steps -> x (2, h, w)."""
        r = b - self.apply(x)
        bound = tol * np.sqrt(np.square(b).sum(axis=(1, 2))) + 1e-12
        z = self.inv_diag * r
        p = z.copy()
        rz = (r * z).sum(axis=(1, 2))
        for _ in range(iterations):
            if np.all(np.sqrt(np.square(r).sum(axis=(1, 2))) <= bound):
                break
            q = self.apply(p)
            alpha = rz / np.maximum((p * q).sum(axis=(1, 2)), 1e-30)
            x += alpha[:, None, None] * p
            r -= alpha[:, None, None] * q
            z = self.inv_diag * r
            rz_new = (r * z).sum(axis=(1, 2))
            p = z + (rz_new / np.maximum(rz, 1e-30))[:, None, None] * p
            rz = rz_new
        return x


def _halve(x: np.ndarray) -> np.ndarray:
    """(..., h, w) -> (..., ceil(h/2), ceil(w/2)): 2x2 means (the last row/column repeated)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        pad = [(0, 0)] * (x.ndim - 2) + [(0, h % 2), (0, w % 2)]
        x = np.pad(x, pad, mode="edge")
    return 0.25 * (x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2])


def _double(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(2, h, w) -> (2, *shape): each value repeated 2x2, cut to shape (a warm start only)."""
    return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)[:, : shape[0], : shape[1]].copy()


def solve_difference(
    L: np.ndarray,
    mask: np.ndarray,
    target: np.ndarray,
    *,
    sigma: float = SIGMA,
    pull: float = PULL,
    stiffness: float = STIFFNESS,
    fine_iterations: int = FINE_ITERATIONS,
    direct_pixels: int = DIRECT_PIXELS,
) -> np.ndarray:
    """L (h, w) in [0, 100], patch weight mask (h, w) in [0, 1], target difference (2, h, w)
    -> the propagated difference (2, h, w) float32 (the energy in the module docstring)."""
    mask = np.asarray(mask, np.float32)
    pull_here = pull * (REFERENCE_SIDE / max(mask.shape)) ** 2
    # the pyramid: each level's pixel stands for 4 of the finer level's, so the per-pixel
    # terms (pull, stiffness) weigh 4x; the neighbour term is scale-free in 2D and stays
    levels = [(*affinities(L, sigma), mask, mask * target, pull_here, stiffness)]
    while levels[-1][2].size > direct_pixels:
        wx, wy, m, mt, pc, sc = levels[-1]
        levels.append((*_coarser(wx, wy), _halve(m), _halve(mt), 4 * pc, 4 * sc))
    x = None
    for wx, wy, m, mt, pc, sc in reversed(levels):
        grid = _Grid(wx, wy, m, pc, sc)
        b = (sc * mt).astype(np.float32)  # stiffness * m * t: the patches' pull
        if x is None:
            x = grid.solve_direct(b)
        else:
            x = grid.solve(b, _double(x, m.shape), fine_iterations, TOLERANCE)
    return x.astype(np.float32, copy=False)


def propagate(
    L: torch.Tensor | np.ndarray,
    ab: torch.Tensor,
    centres: Sequence[tuple[float, float, float]],
    colors: Sequence[tuple[int, int, int]],
    **options,
) -> torch.Tensor:
    """Working-size L (h, w) or (1, h, w) in [0, 100], automatic ab (2, h, w) in Lab units,
    points (x, y, radius) in working pixels with colours (r, g, b) -> ab (2, h, w) with the
    points' colour spread edge-aware. No points: `ab` itself, unchanged."""
    if not centres:
        return ab
    L_np = np.asarray(L, np.float32).reshape(ab.shape[-2:])
    auto = ab.float().numpy()
    mask, target = patches(centres, color_ab(colors), auto.shape[-2:])
    diff = solve_difference(L_np, mask, (target - auto) * (mask > 0), **options)
    return torch.from_numpy(auto + diff).to(ab.dtype)
