"""Image quality metrics on RGB in [0, 1].

SSIM is the original Wang et al. (2004) definition: an 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, computed per RGB channel and averaged over channels and pixels ('valid'
positions only). It equals scikit-image's `structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`.
"""

from __future__ import annotations

import torch

PSNR_CAP = 100.0  # dB reported for identical images (the true value is infinite)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) PSNR in dB, capped at PSNR_CAP."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp(min=1e-30))).clamp(max=PSNR_CAP)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n, n - k + 1) matrix whose columns are the 'valid' placements of the 1-D kernel g."""
    k = g.numel()
    m = torch.zeros(n, n - k + 1, dtype=g.dtype)
    for j in range(n - k + 1):
        m[j : j + k, j] = g
    return m


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1], H and W >= 11 -> (B,) mean SSIM (see module docstring)."""
    assert pred.shape == target.shape, (
        f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
    )
    assert min(pred.shape[-2:]) >= 11, f"SSIM needs images of at least 11x11, got {pred.shape}"
    b, c, h, w = pred.shape
    x, y = pred.float(), target.float()
    # the five local moments in one separable Gaussian pass: (B * C * 5, 1, H, W)
    # as two banded matrix products (the fast GEMM path, far quicker than a 1-channel conv)
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=2)  # (B, C, 5, H, W)
    g = _gaussian_1d()
    stack = _band(h, g).to(x.device).T @ stack @ _band(w, g).to(x.device)
    mx, my, xx, yy, xy = stack.unbind(2)  # each (B, C, H - 10, W - 10)
    vx, vy, cxy = xx - mx**2, yy - my**2, xy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)
