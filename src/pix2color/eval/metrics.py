"""Simple per-image quality metrics on RGB, and the protocol every metric of pix2color follows.

Every metric compares a coloured photo with its true colour photo: RGB of the same size, given
as tensors (B, 3, H, W) in [0, 1] (8-bit photos divided by 255). Per-image metrics are averaged
over the images of a set; FID and KID compare the two sets as wholes. This module holds the
metrics that need no network, the input checks and the weights lookup shared with the network
metrics: LPIPS lives in `pix2color.eval.lpips`, the Inception features and FID/KID in
`pix2color.eval.fid`.

- PSNR (higher is better): 10 log10(1 / MSE) over all pixels and the three RGB channels, data
  range 1; identical images are reported as PSNR_CAP dB (the true value is infinite).
- SSIM (higher is better): the original Wang et al. (2004) definition: an 11x11 Gaussian window
  with sigma 1.5, K1 = 0.01, K2 = 0.03, computed per RGB channel and averaged over channels and
  pixels ('valid' positions only). It equals scikit-image's `structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`.
- Colourfulness (report both): Hasler & Suesstrunk (2003) on 0-255 RGB, as DDColor and CT2
  compute it (`pix2color.data.stats.colorfulness`), mean over images; deltaCF = |mean CF(pred) -
  mean CF(truth)| (lower is better): too grey and too garish both count.
- CIEDE2000 (lower is better): scikit-image's `deltaE_ciede2000` per pixel between the Lab of
  the two images (`pix2color.color.rgb_to_lab`, sRGB D65), mean per image, then over images.

The network metrics' weights are found with `package_dir` (installed packages located without
importing them); a missing one raises MetricWeightsError, whose message names the ways to get it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from pix2color.color.lab import rgb_to_lab
from pix2color.data.stats import colorfulness as _colorfulness_hwc
from pix2color.errors import NotFound

PSNR_CAP = 100.0  # dB reported for identical images (the true value is infinite)


class MetricWeightsError(NotFound):
    """Pretrained weights a metric needs are not installed; the message says how to get them."""


# ---------------------------------------------------------------- PSNR, SSIM
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


# ---------------------------------------------------------------- colour
def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B,) Hasler & Suesstrunk colourfulness on the 0-255 scale."""
    check_rgb("colorfulness", rgb)
    arr = (rgb.detach().float().cpu() * 255.0).permute(0, 2, 3, 1).numpy()
    return torch.tensor([_colorfulness_hwc(a) for a in arr], dtype=torch.float64)


def delta_colorfulness(cf_pred: torch.Tensor, cf_truth: torch.Tensor) -> float:
    """Per-image colourfulness of predictions and truths -> |mean CF(pred) - mean CF(truth)|."""
    return abs(float(cf_pred.double().mean()) - float(cf_truth.double().mean()))


def ciede2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B,) mean CIEDE2000 colour difference per image."""
    from skimage.color import deltaE_ciede2000

    check_pair("ciede2000", pred, target)
    p = pred.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    t = target.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = [deltaE_ciede2000(rgb_to_lab(a), rgb_to_lab(b)).mean() for a, b in zip(p, t, strict=True)]
    return torch.tensor(out, dtype=torch.float64)


def check_rgb(name: str, x: torch.Tensor) -> None:
    """Refuses anything but a batch of RGB images (B, 3, H, W), naming the metric."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} needs RGB images (B, 3, H, W), got shape {tuple(x.shape)}")


def check_pair(name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
    """Refuses a prediction and a target that are not RGB batches of one shape."""
    check_rgb(name, pred)
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in "
            "shape; compare images of the same size"
        )


# ---------------------------------------------------------------- weights lookup
def package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
