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

A direct sparse solver takes about 0.3-1 s for 256x256. Here: conjugate gradients preconditioned
by a two-grid cycle. The coarse grid is the same system on blocks of f x f pixels (at most
DIRECT_PIXELS blocks; between two blocks the sum of the weights crossing between them, so an edge
that cuts the fine grid cuts the coarse one too), factorised once by sparse LU; each cycle is a
damped Jacobi step (for the error that changes from pixel to pixel), the coarse solve (for the
error smooth over an object, on which plain conjugate gradients need hundreds of steps), and
Jacobi again. The coarse solution is the starting point. 15 steps on 256x192 take about 30-50 ms
of one CPU and land within about 0.5 ab units (mean over the pixels) of the exact minimiser
(tests/test_hints.py holds it to a direct solve; bench/bench_hints.py times it). numpy and
scipy only: the arrays are small and every step is a whole-array operation.

`pull` is given for a 256-pixel long side and scaled with the pixel area, so a point's reach is
the same fraction of the photo at any working size. The defaults were chosen on the validation
split (experiments/tune_hints.py, experiments/HINTS.md), never on the test photos: pull 3e-5
scored 0.04-0.07 dB higher there, but let one point tint whatever it is not walled off from (on
the astronaut, a red point on the background reddens her face and the flag); 1e-4 keeps the rest
automatic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pix2color.color.lab import rgb_to_lab_t

SIGMA = 0.05  # L edge scale, L in [0, 1]
PULL = 1e-4  # weight of "stay automatic" per pixel, for a 256-pixel long side
STIFFNESS = 50.0  # weight of "be the point's colour" per patch pixel (near a hard constraint)
REFERENCE_SIDE = 256
DIRECT_PIXELS = 5_000  # at most this many blocks (64x48 for 256x192), solved directly
ITERATIONS, TOLERANCE, JACOBI_DAMPING = 15, 1e-5, 0.7


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
    for (x, y, r), color in zip(centres, ab, strict=True):
        cx, cy = min(max(round(x), 0), w - 1), min(max(round(y), 0), h - 1)
        ri = int(np.ceil(r))
        y0, y1, x0, x1 = max(cy - ri, 0), min(cy + ri + 1, h), max(cx - ri, 0), min(cx + ri + 1, w)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
        disc[cy - y0, cx - x0] = True  # a radius under a working pixel is still one pixel
        weight[y0:y1, x0:x1] += disc
        total[:, y0:y1, x0:x1] += disc * color[:, None, None]
    target = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    return np.minimum(weight, 1.0), target


def affinities(L: np.ndarray, sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """L (h, w) in [0, 100] -> the neighbours' weights: wx (h, w-1) between each pixel and the
    one on its right, wy (h-1, w) and the one below; 1 where L is flat, near 0 across edges."""
    g = np.asarray(L, np.float32) * np.float32(1 / 100)
    scale = np.float32(-0.5 / sigma**2)
    wx = np.exp(np.square(g[:, 1:] - g[:, :-1]) * scale)
    wy = np.exp(np.square(g[1:] - g[:-1]) * scale)
    return wx, wy


def _matrix(wx: np.ndarray, wy: np.ndarray, diag: np.ndarray) -> sp.csc_matrix:
    """The (h*w, h*w) sparse matrix with `diag` on the diagonal and -w between neighbours."""
    h, w = diag.shape
    idx = np.arange(h * w).reshape(h, w)
    rows = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
    cols = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
    off = -np.concatenate([wx.ravel(), wy.ravel()]).astype(np.float64)
    values = np.concatenate([diag.ravel().astype(np.float64), off, off])
    where = (np.concatenate([idx.ravel(), rows, cols]), np.concatenate([idx.ravel(), cols, rows]))
    return sp.csc_matrix((values, where), shape=(h * w, h * w))


def _block_sums(x: np.ndarray, f: int) -> np.ndarray:
    """(C, h, w) -> (C, ceil(h/f), ceil(w/f)): sums over f x f blocks (P^T x)."""
    C, h, w = x.shape
    hc, wc = -(-h // f), -(-w // f)
    if (h, w) != (hc * f, wc * f):
        x = np.pad(x, ((0, 0), (0, hc * f - h), (0, wc * f - w)))
    return x.reshape(C, hc * f, wc, f).sum(axis=3).reshape(C, hc, f, wc).sum(axis=2)


class _Coarse:
    """The system on f x f blocks, factorised once: A_c = P^T A P with P the piecewise-constant
    prolongation (a block's value on each of its pixels). Between two blocks, the weight is the
    sum of the fine weights crossing between them, so an edge that cuts the fine grid cuts the
    coarse one too."""

    def __init__(self, wx: np.ndarray, wy: np.ndarray, extra: np.ndarray, f: int) -> None:
        h, w = extra.shape
        self.f, self.shape = f, (h, w)
        hc, wc = -(-h // f), -(-w // f)
        # the fine edges between block columns J and J + 1, then summed down each block row
        across = np.pad(wx[:, f - 1 :: f][:, : wc - 1], ((0, hc * f - h), (0, 0)))
        wxc = across.reshape(hc, f, wc - 1).sum(1)  # (hc, wc-1)
        down = np.pad(wy[f - 1 :: f][: hc - 1], ((0, 0), (0, wc * f - w)))  # (hc-1, wc*f)
        wyc = down.reshape(hc - 1, wc, f).sum(2)  # (hc-1, wc)
        diag = _block_sums(extra[None], f)[0]
        diag[:, 1:] += wxc
        diag[:, :-1] += wxc
        diag[1:] += wyc
        diag[:-1] += wyc
        # symmetric: an ordering of A + A^T and diagonal pivots keep the fill low
        self.lu = spla.splu(
            _matrix(wxc, wyc, diag), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}
        )
        self.coarse_shape = (hc, wc)

    def correct(self, r: np.ndarray) -> np.ndarray:
        """P A_c^-1 P^T r for r (C, h, w): the residual's smooth part, solved on the blocks."""
        C = len(r)
        rc = _block_sums(r, self.f).reshape(C, -1).T  # (n_c, C)
        xc = self.lu.solve(np.ascontiguousarray(rc)).T.reshape(C, *self.coarse_shape)
        h, w = self.shape
        fine = np.repeat(np.repeat(xc.astype(np.float32), self.f, axis=1), self.f, axis=2)
        return fine[:, :h, :w]


class _Grid:
    """The system's matrix: A = Laplacian(w) + diag(pull + stiffness * m), on the working size."""

    def __init__(self, wx: np.ndarray, wy: np.ndarray, mask: np.ndarray, pull, stiffness):
        self.wx, self.wy = wx, wy
        self.extra = np.full(mask.shape, pull, np.float32)  # the diagonal beyond the Laplacian
        self.extra += stiffness * mask
        diag = self.extra.copy()
        diag[:, 1:] += self.wx
        diag[:, :-1] += self.wx
        diag[1:] += self.wy
        diag[:-1] += self.wy
        self.diag = diag
        self.inv_diag = 1 / diag

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
        return _Coarse(self.wx, self.wy, self.extra, 1).correct(b)

    def precondition(self, r: np.ndarray, coarse: _Coarse) -> np.ndarray:
        """M^-1 r, a symmetric two-grid cycle: Jacobi, the coarse correction, Jacobi again.
        Jacobi damps the error that changes from pixel to pixel, the blocks the error that is
        smooth over an object: what conjugate gradients alone would take hundreds of steps on."""
        z = JACOBI_DAMPING * self.inv_diag * r
        z += coarse.correct(r - self.apply(z))
        z += JACOBI_DAMPING * self.inv_diag * (r - self.apply(z))
        return z

    def solve(self, b: np.ndarray, coarse: _Coarse, iterations: int, tol: float) -> np.ndarray:
        """Conjugate gradients preconditioned by the two-grid cycle, per channel, from the
        coarse solution, until the residual is under tol times |b| or after `iterations` steps
        -> x (2, h, w)."""
        x = coarse.correct(b)
        r = b - self.apply(x)
        bound = tol * np.sqrt(np.square(b).sum(axis=(1, 2))) + 1e-12
        z = self.precondition(r, coarse)
        p = z.copy()
        rz = (r * z).sum(axis=(1, 2))
        for _ in range(iterations):
            if np.all(np.sqrt(np.square(r).sum(axis=(1, 2))) <= bound):
                break
            q = self.apply(p)
            alpha = rz / np.maximum((p * q).sum(axis=(1, 2)), 1e-30)
            x += alpha[:, None, None] * p
            r -= alpha[:, None, None] * q
            z = self.precondition(r, coarse)
            rz_new = (r * z).sum(axis=(1, 2))
            p = z + (rz_new / np.maximum(rz, 1e-30))[:, None, None] * p
            rz = rz_new
        return x


def solve_difference(
    L: np.ndarray,
    mask: np.ndarray,
    target: np.ndarray,
    *,
    sigma: float = SIGMA,
    pull: float = PULL,
    stiffness: float = STIFFNESS,
    iterations: int = ITERATIONS,
    tol: float = TOLERANCE,
    direct_pixels: int = DIRECT_PIXELS,
) -> np.ndarray:
    """L (h, w) in [0, 100], patch weight mask (h, w) in [0, 1], target difference (C, h, w)
    (C = 2 for ab; any C solves C channels at once) -> the propagated difference (C, h, w)
    float32 (the energy in the module docstring)."""
    mask = np.asarray(mask, np.float32)
    h, w = mask.shape
    pull_here = pull * (REFERENCE_SIDE / max(h, w)) ** 2
    grid = _Grid(*affinities(L, sigma), mask, pull_here, stiffness)
    b = (stiffness * mask * target).astype(np.float32)  # the patches' pull
    if h * w <= direct_pixels:
        return grid.solve_direct(b)
    f = 2
    while -(-h // f) * -(-w // f) > direct_pixels:
        f *= 2
    coarse = _Coarse(grid.wx, grid.wy, grid.extra, f)
    return grid.solve(b, coarse, iterations, tol)


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
