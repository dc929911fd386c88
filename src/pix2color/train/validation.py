"""Validation metrics of a generator on a loader of (L, ab) crops: what training selects on.

Used by training (every epoch, early stopping) and by calibration (each colour setting).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader

from pix2color.color.lab import lab_tensor_to_rgb
from pix2color.eval.lpips import LPIPS
from pix2color.eval.metrics import colorfulness, delta_colorfulness, psnr, ssim


@torch.no_grad()
def validate(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    n_samples: int = 0,
    lpips_model: LPIPS | None = None,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Mean val L1 (ab scale), PSNR (and the grey input's), SSIM, colourfulness and ΔCF, LPIPS.

    -> (metrics, sample grid or None). Batches (L, ab, hints, reference) of a guided-colour
    generator are also scored with their fixed points: val_l1_hints, psnr_hints, lpips_hints.
    """
    was_training = G.training
    G.eval()
    l1s, psnrs, psnr_grays, ssims, lpipss, lpips_grays, cfs, cf_truths, rows = (
        [] for _ in range(9)
    )
    l1_hints, psnr_hints, lpips_hints = [], [], []
    for L, ab, *guidance in loader:
        L, ab = L.to(device), ab.to(device)
        fake = G(L).float()
        if guidance:  # the same photos with validation's fixed colour points
            guided = G(L, *(g.to(device) for g in guidance)).float()
            l1_hints.append((guided - ab).abs().flatten(1).mean(1).cpu())
            rgb_guided = lab_tensor_to_rgb(L, guided)
            psnr_hints.append(psnr(rgb_guided, lab_tensor_to_rgb(L, ab)).cpu())
            if lpips_model is not None:
                lpips_hints.append(lpips_model(rgb_guided, lab_tensor_to_rgb(L, ab)).cpu())
        l1s.append((fake - ab).abs().flatten(1).mean(1).cpu())
        rgb_fake, rgb_true = lab_tensor_to_rgb(L, fake), lab_tensor_to_rgb(L, ab)
        gray = lab_tensor_to_rgb(L, torch.zeros_like(ab))
        psnrs.append(psnr(rgb_fake, rgb_true).cpu())
        psnr_grays.append(psnr(gray, rgb_true).cpu())
        ssims.append(ssim(rgb_fake, rgb_true).cpu())
        cfs.append(colorfulness(rgb_fake))
        cf_truths.append(colorfulness(rgb_true))
        if lpips_model is not None:
            lpipss.append(lpips_model(rgb_fake, rgb_true).cpu())
            lpips_grays.append(lpips_model(gray, rgb_true).cpu())
        if len(rows) < n_samples:
            for g, f, t in zip(gray, rgb_fake, rgb_true, strict=True):
                if len(rows) < n_samples:
                    rows.append(torch.cat([g, f, t], dim=2).cpu())  # grey | predicted | truth
    G.train(was_training)
    metrics = {
        "val_l1": torch.cat(l1s).mean().item(),
        "psnr": torch.cat(psnrs).mean().item(),
        "psnr_grey": torch.cat(psnr_grays).mean().item(),  # the grey input's: a floor to beat
        # standard error of the mean per-photo PSNR gain over grey (0 for a single photo)
        "psnr_gain_se": _standard_error(torch.cat(psnrs) - torch.cat(psnr_grays)),
        "ssim": torch.cat(ssims).mean().item(),
        "cf": torch.cat(cfs).mean().item(),
        "cf_truth": torch.cat(cf_truths).mean().item(),
        "dcf": delta_colorfulness(torch.cat(cfs), torch.cat(cf_truths)),
    }
    if lpipss:
        metrics["lpips"] = torch.cat(lpipss).mean().item()
        metrics["lpips_grey"] = torch.cat(lpips_grays).mean().item()
    if l1_hints:
        metrics["val_l1_hints"] = torch.cat(l1_hints).mean().item()
        metrics["psnr_hints"] = torch.cat(psnr_hints).mean().item()
    if lpips_hints:
        metrics["lpips_hints"] = torch.cat(lpips_hints).mean().item()
    grid = torch.cat(rows, dim=1) if rows else None  # (3, n * H, 3 * W)
    return metrics, grid


def _standard_error(x: torch.Tensor) -> float:
    return (x.double().std() / math.sqrt(len(x))).item() if len(x) > 1 else 0.0
