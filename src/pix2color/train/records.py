"""What a run folder shows a person: metrics.csv, loss.png / metrics.png, sample grids."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pix2color.files import replacing

CSV_FIELDS = [
    "epoch", "loss_g_l1", "loss_g_class", "loss_g_feat", "loss_g_gan", "loss_d", "d_active",
    "val_l1", "psnr", "psnr_grey", "ssim", "cf", "cf_truth", "dcf", "lr_g", "lr_d", "seconds",
    "images_per_second",
]  # fmt: skip


def write_plots(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """loss.png (L1 train/val, GAN losses) and metrics.png (validation PSNR, SSIM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(epochs, [r["loss_g_l1"] for r in rows], label="G L1 (train)")
    ax[0].plot(epochs, [r["val_l1"] for r in rows], label="L1 (val)")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("L1 on ab / 110")
    ax[0].legend()
    ax[1].plot(epochs, [r["loss_g_gan"] for r in rows], label="G GAN")
    ax[1].plot(epochs, [r["loss_d"] for r in rows], label="D")
    ax[1].set_xlabel("epoch")
    ax[1].legend()
    ax[1].set_title("adversarial losses (blank before D starts)")
    fig.tight_layout()
    fig.savefig(run_dir / "loss.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(epochs, [r["psnr"] for r in rows])
    ax[0].set_title("validation PSNR (dB)")
    ax[1].plot(epochs, [r["ssim"] for r in rows])
    ax[1].set_title("validation SSIM")
    for a in ax:
        a.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(run_dir / "metrics.png", dpi=100)
    plt.close(fig)


def save_grid(grid: torch.Tensor, path: Path) -> None:
    """A (3, H, W) grid in [0, 1] as a PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def write_metrics_csv(
    rows: list[dict[str, Any]], path: Path, fields: list[str] = CSV_FIELDS
) -> None:
    """One row per epoch, the columns in `fields`; rewritten whole (atomically) every epoch."""
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in fields})
