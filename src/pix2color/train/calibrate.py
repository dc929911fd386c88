"""Choose how bold a model's colour is (its colour setting), on the validation split.

Two knobs decode the predicted colour distribution p(bin | photo) into one ab per pixel:
- the annealed-mean temperature T: T = 1 is the mean (pale), small T the mode;
- the prior boost a: p is divided by the training photos' colour prior (mixed half and half
  with the uniform distribution) to the power a before decoding, so that rare, saturated
  colours win more often (a = 0: the network's own probabilities; a = 1: the weights of Zhang
  et al.'s class rebalancing, applied when decoding instead of in the loss). It is folded into
  the head's bias
  (bias - a * log prior), so the shipped model needs no extra code or weights.
A trained class-head model is calibrated on the *validation* photos (never the test split): each
(a, T) pair is scored with validate(), and among the pairs that keep pix2color's other quality
targets against the grey input (PSNR not significantly below grey's; LPIPS at least 25 % lower,
where any pair reaches that), the one whose mean colourfulness is closest to the true photos'
(smallest ΔCF) wins: see choose().
The whole sweep goes into the model's metadata, so the model card can show it.

A regression model (the L1-trained MobileNet U-Net) has one knob instead: the ab gain, a factor
on its predicted ab (clipped to the valid range). L1 pulls uncertain colour towards grey, so its
colour is pale; the gain is swept and chosen by the same rule (see calibrate()).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pix2color.color.classes import mixed_prior, photos_ab_prior
from pix2color.data.dataset import CenterCrops, split_files
from pix2color.errors import UsageError
from pix2color.eval.lpips import LPIPS
from pix2color.models.color_settings import (
    BOOSTS,
    GAINS,
    TEMPERATURES,
    check_gain,
    check_temperature,
    color_knob,
)
from pix2color.train.validation import validate

log = logging.getLogger(__name__)


def log_prior(
    photos: list[np.ndarray], bins: torch.Tensor, stride: int = 4, mix: float = 0.5
) -> torch.Tensor:
    """(Q,) log of each ab bin's smoothed share in `photos` (every `stride`-th pixel), mixed
    with the uniform distribution like the loss's rebalancing (`mix` = 0.5): a boost of 1
    weighs colours exactly like class rebalancing, and unseen bins stay bounded.
    """
    return torch.log(mixed_prior(photos_ab_prior(photos, bins, stride), bins, mix))


def _check(G: nn.Module, knob: str) -> None:
    if color_knob(G) != knob:
        raise UsageError(
            f"this model has no {knob} to calibrate: a temperature belongs to models with a "
            "class head (model.head='classes'), an ab gain to MobileNet U-Nets that regress ab "
            "(model.generator='mobilenet_unet')"
        )


def sweep(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    temperatures: tuple[float, ...] = TEMPERATURES,
    boosts: tuple[float, ...] = (0.0,),
    prior: torch.Tensor | None = None,
    lpips_model: LPIPS | None = None,
) -> list[dict[str, float]]:
    """Validation metrics of G for each (boost, temperature) -> one row per pair.

    `prior` is log_prior()'s output, needed for boosts other than 0. G is left as it was.
    """
    _check(G, "temperature")
    for t in temperatures:  # all of them before the first (slow) validation pass
        check_temperature(t)
    if any(boosts) and prior is None:
        raise ValueError("a prior boost needs the training photos' colour prior")
    bias, before, rows = G.head.bias.detach().clone(), G.temperature, []
    try:
        for a in boosts:
            with torch.no_grad():
                G.head.bias.copy_(bias - a * prior.to(bias) if a else bias)
            for t in temperatures:
                G.set_temperature(t)
                metrics, _ = validate(G, loader, device, 0, lpips_model)
                rows.append({"boost": float(a), "temperature": float(t), **metrics})
                log.info(
                    "a=%.2f T=%.2f: colourfulness %.1f (truth %.1f), ΔCF %.1f, PSNR %.2f "
                    "(grey %.2f)%s",
                    a, t, metrics["cf"], metrics["cf_truth"], metrics["dcf"], metrics["psnr"],
                    metrics["psnr_grey"],
                    f", LPIPS {metrics['lpips']:.4f}" if "lpips" in metrics else "",
                )  # fmt: skip
    finally:
        with torch.no_grad():
            G.head.bias.copy_(bias)
        G.set_temperature(before)
    return rows


def sweep_gain(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    gains: tuple[float, ...] = GAINS,
    lpips_model: LPIPS | None = None,
) -> list[dict[str, float]]:
    """Validation metrics of a regression model for each ab gain -> one row per gain.

    G is left with the gain it had.
    """
    _check(G, "gain")
    for g in gains:  # all of them before the first (slow) validation pass
        check_gain(g)
    before, rows = G.ab_gain, []
    try:
        for g in gains:
            G.set_ab_gain(float(g))
            metrics, _ = validate(G, loader, device, 0, lpips_model)
            rows.append({"gain": float(g), **metrics})
            log.info(
                "gain %.2f: colourfulness %.1f (truth %.1f), ΔCF %.1f, PSNR %.2f (grey %.2f)%s",
                g, metrics["cf"], metrics["cf_truth"], metrics["dcf"], metrics["psnr"],
                metrics["psnr_grey"],
                f", LPIPS {metrics['lpips']:.4f}" if "lpips" in metrics else "",
            )  # fmt: skip
    finally:
        G.set_ab_gain(before)
    return rows


def beats_gray(row: dict[str, float]) -> bool:
    """Whether a setting's validation PSNR is not significantly below the grey input's.

    Significantly: the mean per-photo gain over grey is more than two standard errors below 0
    (a one-sided test at about 2.5 %); on 68 photos a gain of -0.3 dB can be noise.
    """
    if "psnr_grey" not in row:
        return True
    return row["psnr"] - row["psnr_grey"] + 2 * row.get("psnr_gain_se", 0.0) >= 0


LPIPS_TARGET = 0.75  # LPIPS at most 75 % of the grey input's (pix2color's quality target)


def meets_lpips_target(row: dict[str, float]) -> bool:
    """Whether a setting's validation LPIPS is at least 25 % below the grey input's (if scored)."""
    if "lpips" not in row or "lpips_grey" not in row:
        return True
    return row["lpips"] <= LPIPS_TARGET * row["lpips_grey"]


def choose(rows: list[dict[str, float]]) -> dict[str, float]:
    """The setting with the smallest ΔCF (most true-to-life colourfulness) under two guards.

    1. PSNR not significantly below the grey input's (beats_grey): vivid but wrong colour
       scores below the grey photo itself. If no setting passes, the highest PSNR wins.
    2. LPIPS at least 25 % below grey's, when scored, but only if some setting that passed 1
       also passes 2 (a target no setting reaches cannot choose between them).
    Ties go to the safer setting: the smaller boost, then the higher temperature, then the
    smaller gain (rows of a regression model have a gain instead of a boost and temperature).
    """
    if not rows:
        raise ValueError("no settings were scored")

    def safer(r: dict[str, float]) -> tuple[float, float, float]:
        return r.get("boost", 0.0), -r.get("temperature", 0.0), r.get("gain", 1.0)

    fair = [r for r in rows if beats_gray(r)]
    if not fair:
        return max(rows, key=lambda r: (r["psnr"], *(-v for v in safer(r))))
    fair = [r for r in fair if meets_lpips_target(r)] or fair
    return min(fair, key=lambda r: (round(r["dcf"], 6), *safer(r)))


def val_loader(
    root: str | Path, size: int = 256, short_side: int = 0, batch_size: int = 16
) -> DataLoader:
    """The validation split of a prepared folder, as fit() sees it (CenterCrops.from_files)."""
    val_set = CenterCrops.from_files(split_files(root, "val"), size=size, short_side=short_side)
    return DataLoader(val_set, batch_size=batch_size)


def calibrate(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    *,
    train_photos: list[np.ndarray] | None = None,
    temperatures: tuple[float, ...] = TEMPERATURES,
    boosts: tuple[float, ...] = BOOSTS,
    gains: tuple[float, ...] = GAINS,
    lpips_model: LPIPS | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Sweep G's colour setting on validation photos, choose by choose()'s rule and apply it.

    A class model sweeps (prior boost, temperature) pairs, the boost folded into the head's bias
    (without `train_photos` only the temperature); a regression model sweeps its ab gain.
    -> (the chosen row, metadata for the model's config).
    """
    if color_knob(G) == "gain":
        rows = sweep_gain(G, loader, device, gains, lpips_model)
        best = choose(rows)
        G.set_ab_gain(best["gain"])
        chosen, many, one = {"gain": best["gain"]}, "ab gains", "gain"
    else:
        _check(G, "temperature")
        if train_photos is None:
            boosts = (0.0,)
        prior = log_prior(train_photos, G.bins.cpu()) if any(boosts) else None
        rows = sweep(G, loader, device, temperatures, boosts, prior, lpips_model)
        best = choose(rows)
        with torch.no_grad():
            if best["boost"]:
                G.head.bias.sub_(best["boost"] * prior.to(G.head.bias))
        G.set_temperature(best["temperature"])
        chosen = {"boost": best["boost"], "temperature": best["temperature"]}
        many, one = "settings", "setting"
    meta = {
        "rule": f"smallest validation ΔCF (|mean colourfulness - truth's|) among {many} whose "
        "PSNR gain over grey is not below -2 standard errors, and whose LPIPS is at most 75 % "
        f"of grey's if any such {one} reaches that",
        "chosen": chosen,
        "sweep": [{k: round(v, 5) for k, v in r.items()} for r in rows],
    }
    if "boost" in chosen:
        meta["boost_in_bias"] = best["boost"]  # the head's bias now holds -boost * log prior
    return best, meta


def calibrated_metadata(metadata: dict[str, Any], best: dict[str, float], meta: dict[str, Any]):
    """A model's metadata after calibration: the sweep, and the chosen setting's val metrics.

    A boost already in the head's bias (an earlier calibration) stays counted in boost_in_bias.
    """
    if "gain" in best:  # a regression model: the gain replaces any earlier one
        out = {**metadata, "calibration": meta}
    else:
        earlier = metadata.get("calibration", {}).get("boost_in_bias", 0.0)
        out = {**metadata, "calibration": {**meta, "boost_in_bias": earlier + best["boost"]}}
    if "val_metrics" in metadata:
        out["val_metrics_before_calibration"] = metadata["val_metrics"]
    keys = ("val_l1", "psnr", "ssim", "lpips", "cf", "dcf")
    out["val_metrics"] = {k: round(best[k], 5) for k in keys if k in best}
    return out
