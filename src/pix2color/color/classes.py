"""Colour as classes: quantised ab bins, soft targets, class rebalancing, annealed-mean decoding.

L1 regression averages the plausible colours of an uncertain object (a red or a blue car) into
brown. Predicting a distribution over quantised ab bins instead (Zhang, Isola & Efros, "Colorful
Image Colorization", 2016) keeps the modes apart; weighting rare, saturated bins up in the loss
("class rebalancing") stops the common desaturated bins from winning; decoding with the
"annealed mean" (softmax at a temperature T < 1, then the mean) chooses between the mean
(T = 1: safe but pale) and the mode (T -> 0: vivid but patchy).

Units: ab in CIELAB units in this module's internals; the network's ab scale (ab / 110) at its
boundaries, like everywhere else in pix2color.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pix2color.color.lab import AB_SCALE, rgb_to_lab_t

GRID_STEP = 10.0  # bin width in Lab units (Zhang et al.'s grid)


def ab_bin_centres(step: float = GRID_STEP, samples: int = 97) -> torch.Tensor:
    """(Q, 2) centres (a, b) in Lab units of the grid bins that hold at least one sRGB colour.

    The sRGB cube is sampled on a `samples`^3 grid, converted to Lab, and each colour's ab is
    rounded to the nearest multiple of `step`; the bins hit are kept, ordered by (a, b). With
    the defaults this gives 261 bins.
    """
    v = torch.linspace(0.0, 1.0, samples, dtype=torch.float64)
    r, g, b = torch.meshgrid(v, v, v, indexing="ij")
    rgb = torch.stack([r.flatten(), g.flatten(), b.flatten()])[:, :, None]  # (3, N, 1)
    ab = rgb_to_lab_t(rgb)[1:, :, 0].T  # (N, 2)
    centres = torch.unique(torch.round(ab / step), dim=0) * step  # sorted by a, then b
    return centres.float()


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, Q, H, W) logits, (Q, 2) bins in Lab units -> (B, 2, H, W) ab on the network's scale."""
    p = torch.softmax(logits.float() / temperature, dim=1)
    ab = torch.einsum("bqhw,qc->bchw", p, bins.to(p.dtype))
    return ab / AB_SCALE


def _nearest(ab: torch.Tensor, bins: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2), (Q, 2) in Lab units -> squared distances and indices of the k nearest bins."""
    d2 = torch.cdist(ab, bins).square()
    return torch.topk(d2, k, dim=1, largest=False)


def ab_prior(ab_pixels: torch.Tensor, bins: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """(N, 2) ab in Lab units -> (Q,) share of pixels whose nearest bin is each bin."""
    counts = torch.zeros(len(bins), dtype=torch.float64)
    for part in ab_pixels.split(chunk):
        _, idx = _nearest(part.float(), bins, 1)
        counts += torch.bincount(idx[:, 0], minlength=len(bins)).double()
    if counts.sum() == 0:
        raise ValueError("ab_prior needs at least one pixel")
    return (counts / counts.sum()).float()


def photos_ab_prior(photos: list[np.ndarray], bins: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """(Q,) share of each bin among the ab of every `stride`-th pixel of RGB uint8 `photos`."""
    parts = []
    for rgb in photos:
        small = torch.from_numpy(np.ascontiguousarray(rgb[::stride, ::stride]))
        lab = rgb_to_lab_t(small.permute(2, 0, 1).float() / 255.0)
        parts.append(lab[1:].flatten(1).T)
    return ab_prior(torch.cat(parts), bins)


def smooth_prior(prior: torch.Tensor, bins: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """(Q,) bin shares -> the same, smoothed by a Gaussian over the ab plane (sigma: Lab units)."""
    d2 = torch.cdist(bins, bins).square()
    kernel = torch.exp(-d2 / (2 * sigma**2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    smooth = kernel @ prior
    return smooth / smooth.sum()


def mixed_prior(
    prior: torch.Tensor, bins: torch.Tensor, mix: float = 0.5, sigma: float = 5.0
) -> torch.Tensor:
    """(Q,) bin shares -> smoothed (smooth_prior), then mixed with the uniform distribution.

    `mix` is the uniform share: it bounds how far rare bins are favoured by what divides by it
    (rebalancing_weights in the loss, the prior boost of pix2color.calibrate when decoding).
    """
    return (1 - mix) * smooth_prior(prior, bins, sigma) + mix / len(bins)


def rebalancing_weights(
    prior: torch.Tensor, bins: torch.Tensor, mix: float = 0.5, sigma: float = 5.0
) -> torch.Tensor:
    """(Q,) empirical bin shares -> (Q,) loss weights, rare bins up, mean weight 1 over pixels.

    The prior is smoothed with a Gaussian over the ab plane (sigma in Lab units), mixed with the
    uniform distribution (`mix`: 0 = full inverse-frequency weighting, 1 = no rebalancing), and
    inverted; weights are scaled so that their expectation under the smoothed prior is 1.
    """
    w = 1.0 / mixed_prior(prior, bins, mix, sigma)
    return w / (w * smooth_prior(prior, bins, sigma)).sum()


class ColorClassLoss(nn.Module):
    """Rebalanced cross-entropy between predicted bin logits and soft-encoded true ab.

    Each true ab is spread over its `k` nearest bins with Gaussian weights (`sigma` in Lab
    units), so that neighbouring bins are not punished as hard as far ones; each pixel's loss is
    multiplied by the rebalancing weight of its nearest bin.
    """

    def __init__(
        self, bins: torch.Tensor, weights: torch.Tensor, *, k: int = 5, sigma: float = 5.0
    ) -> None:
        super().__init__()
        self.register_buffer("bins", bins.float().clone())
        self.register_buffer("weights", weights.float().clone())
        self.k, self.sigma = k, sigma

    def forward(self, logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """(B, Q, h, w) logits, (B, 2, H, W) true ab on the network's scale -> scalar loss.

        The true ab is average-pooled to the logits' size first.
        """
        h, w = logits.shape[-2:]
        if ab.shape[-2:] != (h, w):
            ab = F.adaptive_avg_pool2d(ab.float(), (h, w))
        flat = ab.float().permute(0, 2, 3, 1).reshape(-1, 2) * AB_SCALE
        d2, idx = _nearest(flat, self.bins, self.k)
        soft = torch.softmax(-d2 / (2 * self.sigma**2), dim=1)  # Gaussian weights, normalised
        logp = (
            torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1).reshape(flat.shape[0], -1)
        )
        ce = -(soft * logp.gather(1, idx)).sum(dim=1)
        return (self.weights[idx[:, 0]] * ce).mean()
