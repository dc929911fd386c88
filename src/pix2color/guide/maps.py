"""What a guided-colour network (models HintUNet) reads beside L: point maps and a reference.

Point maps (POINT_CHANNELS = 6, at the working size, ab in network units ab / 110):
  0-1  `spread`: the points' colour spread edge-aware over GREY (propagate.solve_difference with
       the points' ab as target), fading to 0 far from any point;
  2    `reach`: the same spread of a constant 1 on the points' patches: how strongly the points
       speak at each pixel (1 on a patch, falling across edges and with distance);
  3-4  the sparse hint ab on the patches (0 elsewhere);
  5    the patch mask (1 on a patch).
The classical result is auto + solve(S (t - auto)) = auto + spread - solve(S auto_on_patches),
and solve(S auto_on_patches) is about auto * reach where the automatic colour is smooth near a
point; so `(1 - reach) * auto + spread` is (nearly) the classical propagation, and with no points
(all maps 0) it is `auto` exactly. HintUNet starts from that and learns a correction.

The maps depend on L and the points only, never on the network, so training computes them per
crop in the data layer (about 10-30 ms of one CPU for a 128-176 px crop) and inference once per
photo.

Reference (REFERENCE_BINS x REFERENCE_BINS + 1 values): a 2-D histogram of a reference photo's
ab over [-AB_RANGE, AB_RANGE]^2, weighted by chroma so that grey pixels do not drown the colours,
normalised to sum 1, then a last value 1 (a reference was given); no reference: all 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pix2color.color.lab import AB_SCALE, denormalize_L
from pix2color.guide.propagate import PULL, patches, solve_difference

POINT_CHANNELS = 6
REFERENCE_BINS = 8
REFERENCE_VALUES = REFERENCE_BINS * REFERENCE_BINS + 1
AB_RANGE = 80.0  # Lab units; the histogram's outer bins take everything beyond


def point_maps(
    L: np.ndarray | torch.Tensor,
    centres: Sequence[tuple[float, float, float]],
    ab: np.ndarray,
) -> torch.Tensor:
    """Working-size L (h, w) in [0, 100], points (x, y, radius) in working pixels with colours
    ab (N, 2) in Lab units -> the point maps (POINT_CHANNELS, h, w) float32 (module docstring)."""
    L_np = np.asarray(L, np.float32)
    L_np = L_np.reshape(L_np.shape[-2:])
    h, w = L_np.shape
    maps = np.zeros((POINT_CHANNELS, h, w), np.float32)
    if len(centres) == 0:
        return torch.from_numpy(maps)
    mask, target = patches(centres, np.asarray(ab, np.float32), (h, w))
    on = (mask > 0).astype(np.float32)
    target = target / AB_SCALE * on
    spread = solve_difference(L_np, mask, np.concatenate([target, on[None]]))  # (3, h, w)
    maps[0:3] = spread
    maps[2] = np.clip(maps[2], 0.0, 1.0)
    maps[3:5] = target
    maps[5] = on
    return torch.from_numpy(maps)


def reference_histogram(ab: np.ndarray | torch.Tensor) -> torch.Tensor:
    """ab (2, h, w) in Lab units -> (REFERENCE_VALUES,) float32: the chroma-weighted 2-D ab
    histogram, normalised to sum 1, and a last value 1 (a reference is given)."""
    a = torch.as_tensor(ab, dtype=torch.float32).reshape(2, -1)
    idx = ((a + AB_RANGE) / (2 * AB_RANGE) * REFERENCE_BINS).long().clamp(0, REFERENCE_BINS - 1)
    weight = a.norm(dim=0) + 1.0  # grey counts a little, colour counts more
    hist = torch.zeros(REFERENCE_BINS * REFERENCE_BINS)
    hist.index_add_(0, idx[0] * REFERENCE_BINS + idx[1], weight)
    return torch.cat([hist / hist.sum(), torch.ones(1)])


def no_reference() -> torch.Tensor:
    """(REFERENCE_VALUES,) zeros: no reference photo."""
    return torch.zeros(REFERENCE_VALUES)


def classical_difference(
    L: torch.Tensor, hints: torch.Tensor, auto: torch.Tensor, pull: float = PULL
) -> torch.Tensor:
    """The classical propagation's change to an automatic colour, for a batch, without gradient:
    L (B, 1, h, w) in [-1, 1], point maps (B, POINT_CHANNELS, h, w), automatic ab (B, 2, h, w) in
    network units -> solve(S (t - auto)) (B, 2, h, w), so that auto + it is exactly
    propagate.propagate's result (the patches' mask and target are channels 5 and 3-4 of the
    maps) with the same `pull`. A photo without points gets zeros, with no solve."""
    out = torch.zeros_like(auto)
    L_lab = denormalize_L(L.detach().float()).cpu().numpy()
    hints_np = hints.detach().float().cpu().numpy()
    auto_np = auto.detach().float().cpu().numpy()
    for b in range(auto.shape[0]):
        mask = hints_np[b, 5]
        if not mask.any():
            continue
        target = (hints_np[b, 3:5] - auto_np[b]) * mask
        diff = solve_difference(L_lab[b, 0], mask, target, pull=pull)
        out[b] = torch.from_numpy(diff).to(out)
    return out
