"""Image quality metrics on RGB in [0, 1].

SSIM is the original Wang et al. (2004) definition: an 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, computed per RGB channel and averaged over channels and pixels ('valid'
positions only). It equals scikit-image's `structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_CAP = 100.0  # dB reported for identical images (the true value is infinite)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) PSNR in dB, capped at PSNR_CAP."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp(min=1e-30))).clamp(max=PSNR_CAP)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] @ g[None, :]


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1], H and W >= 11 -> (B,) mean SSIM (see module docstring)."""
    assert pred.shape == target.shape, (
        f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
    )
    assert min(pred.shape[-2:]) >= 11, f"SSIM needs images of at least 11x11, got {pred.shape}"
    c = pred.shape[1]
    x, y = pred.double(), target.double()
    w = _gaussian_window().to(x.device).expand(c, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()
