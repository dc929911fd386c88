"""One pix2pix optimisation step: D on real vs. fake pairs, then G (L1, classes, features,
GAN)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from pix2color.color.classes import ColorClassLoss
from pix2color.models.patchgan import GANLoss


def train_step(
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    gan_loss: GANLoss,
    L: torch.Tensor,
    ab: torch.Tensor,
    *,
    lambda_l1: float = 100.0,
    use_gan: bool = True,
    train_d: bool = True,
    real_label: float = 1.0,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    D_for_g: nn.Module | None = None,
    class_loss: ColorClassLoss | None = None,
    lambda_class: float = 0.0,
    feature_loss: nn.Module | None = None,
    lambda_feat: float = 0.0,
    guidance: tuple[torch.Tensor, ...] = (),
) -> dict[str, float]:
    """One pix2pix update: D on real vs. detached fake pairs, then G to fool D and match ab.

    Before the discriminator's start (`use_gan=False`) G learns from L1 alone (plus the ab-class
    loss for a class head) and D is not touched at all. `D_for_g` is D without its DDP wrapper:
    G's step needs gradients through D, never into it, and must not involve DDP's reducer.
    `guidance`: a guided-colour generator's further inputs (point maps, reference), passed on.
    """
    out = {"loss_d": float("nan"), "loss_g_gan": float("nan")}
    with autocast():
        if class_loss is not None:
            ab_fake, logits = G(L, return_logits=True)  # (B, 2, H, W), (B, Q, H/4, W/4)
        else:
            ab_fake = G(L, *guidance)  # (B, 2, H, W)
    if use_gan and train_d:
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            # one-sided label smoothing: only D's real target is softened, never G's
            real = gan_loss(D(L, ab), real=True, label=real_label)
            loss_d = 0.5 * (real + gan_loss(D(L, ab_fake.detach()), real=False))
        loss_d.backward()
        opt_d.step()
        out["loss_d"] = loss_d.item()
    opt_g.zero_grad(set_to_none=True)
    with autocast():
        loss_l1 = (ab_fake.float() - ab).abs().mean()
        loss_g = lambda_l1 * loss_l1
        if class_loss is not None:
            loss_class = class_loss(logits, ab)
            loss_g = loss_g + lambda_class * loss_class
            out["loss_g_class"] = loss_class.item()
        if feature_loss is not None and lambda_feat:
            loss_feat = feature_loss(L, ab_fake, ab)
            loss_g = loss_g + lambda_feat * loss_feat
            out["loss_g_feat"] = loss_feat.item()
        if use_gan:
            Dg = D_for_g if D_for_g is not None else D
            Dg.requires_grad_(False)  # G's step needs gradients through D, not into it
            loss_gan = gan_loss(Dg(L, ab_fake), real=True)
            loss_g = loss_g + loss_gan
            out["loss_g_gan"] = loss_gan.item()
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    out["loss_g_l1"] = loss_l1.item()
    return out
