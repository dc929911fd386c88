"""pix2pix training: L1 + conditional GAN, the original project's improvements as options.

`fit(config, run_dir)` is the whole loop. A run folder holds: config.toml (resolved recipe),
metrics.csv (one row per epoch), loss.png and metrics.png, samples/epoch_NNN.png (validation
grid: grey | predicted | truth), last.pt and best.pt (self-describing checkpoints, written
atomically), and model/ (the best generator as safetensors + config.json, ready to ship).
Under `torchrun` the same loop runs with DistributedDataParallel (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from pix2color.ab_classes import ColourClassLoss, photos_ab_prior, rebalancing_weights
from pix2color.color import lab_tensor_to_rgb
from pix2color.config import Config, ModelConfig
from pix2color.data.dataset import CenterCrops, RandomCrops, load_photos, split_files
from pix2color.metrics import LPIPS, colorfulness, delta_colorfulness, psnr, ssim
from pix2color.models.encoder_unet import MobileNetUNet
from pix2color.models.io import ARCHITECTURES, load_generator, save_pretrained
from pix2color.models.patchgan import GANLoss, PatchDiscriminator
from pix2color.models.unet import UNetGenerator

log = logging.getLogger(__name__)

METRIC_MODES = {"val_l1": "min", "psnr": "max", "ssim": "max", "lpips": "min", "dcf": "min"}
CSV_FIELDS = [
    "epoch", "loss_g_l1", "loss_g_class", "loss_g_gan", "loss_d", "d_active", "val_l1", "psnr",
    "psnr_grey", "ssim", "cf", "cf_truth", "dcf", "lr_g", "lr_d", "seconds", "images_per_second",
]  # fmt: skip


def build_models(cfg: ModelConfig) -> tuple[nn.Module, PatchDiscriminator]:
    """The generator and discriminator a recipe describes."""
    if cfg.generator == "mobilenet_unet":  # the U-Net shape keys do not apply to it
        G: nn.Module = MobileNetUNet(
            pretrained=cfg.pretrained, head=cfg.head, temperature=cfg.temperature
        )
    elif cfg.generator == "unet":
        G = UNetGenerator(
            base_channels=cfg.base_channels,
            depth=cfg.depth,
            max_channels=cfg.max_channels,
            dropout=cfg.dropout,
            dropout_blocks=cfg.dropout_blocks,
        )
    else:
        raise ValueError(f"model.generator={cfg.generator!r}: use unet or mobilenet_unet")
    D = PatchDiscriminator(base_channels=cfg.d_base_channels, n_layers=cfg.d_layers)
    return G, D


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
    class_loss: ColourClassLoss | None = None,
    lambda_class: float = 0.0,
) -> dict[str, float]:
    """One pix2pix update: D on real vs. detached fake pairs, then G to fool D and match ab.

    Before the discriminator's start (`use_gan=False`) G learns from L1 alone (plus the ab-class
    loss for a class head) and D is not touched at all. `D_for_g` is D without its DDP wrapper:
    G's step needs gradients through D, never into it, and must not involve DDP's reducer.
    """
    out = {"loss_d": float("nan"), "loss_g_gan": float("nan")}
    with autocast():
        if class_loss is not None:
            ab_fake, logits = G(L, return_logits=True)  # (B, 2, H, W), (B, Q, H/4, W/4)
        else:
            ab_fake = G(L)  # (B, 2, H, W)
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


@torch.no_grad()
def validate(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    n_samples: int = 0,
    lpips_model: LPIPS | None = None,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Mean val L1 (ab scale), PSNR (and the grey input's), SSIM, colourfulness and ΔCF, LPIPS.

    -> (metrics, sample grid or None).
    """
    was_training = G.training
    G.eval()
    l1s, psnrs, psnr_greys, ssims, lpipss, lpips_greys, cfs, cf_truths, rows = (
        [] for _ in range(9)
    )
    for L, ab in loader:
        L, ab = L.to(device), ab.to(device)
        fake = G(L).float()
        l1s.append((fake - ab).abs().flatten(1).mean(1).cpu())
        rgb_fake, rgb_true = lab_tensor_to_rgb(L, fake), lab_tensor_to_rgb(L, ab)
        grey = lab_tensor_to_rgb(L, torch.zeros_like(ab))
        psnrs.append(psnr(rgb_fake, rgb_true).cpu())
        psnr_greys.append(psnr(grey, rgb_true).cpu())
        ssims.append(ssim(rgb_fake, rgb_true).cpu())
        cfs.append(colorfulness(rgb_fake))
        cf_truths.append(colorfulness(rgb_true))
        if lpips_model is not None:
            lpipss.append(lpips_model(rgb_fake, rgb_true).cpu())
            lpips_greys.append(lpips_model(grey, rgb_true).cpu())
        if len(rows) < n_samples:
            for g, f, t in zip(grey, rgb_fake, rgb_true, strict=True):
                if len(rows) < n_samples:
                    rows.append(torch.cat([g, f, t], dim=2).cpu())  # grey | predicted | truth
    G.train(was_training)
    metrics = {
        "val_l1": torch.cat(l1s).mean().item(),
        "psnr": torch.cat(psnrs).mean().item(),
        "psnr_grey": torch.cat(psnr_greys).mean().item(),  # the grey input's: a floor to beat
        # standard error of the mean per-photo PSNR gain over grey (0 for a single photo)
        "psnr_gain_se": _standard_error(torch.cat(psnrs) - torch.cat(psnr_greys)),
        "ssim": torch.cat(ssims).mean().item(),
        "cf": torch.cat(cfs).mean().item(),
        "cf_truth": torch.cat(cf_truths).mean().item(),
        "dcf": delta_colorfulness(torch.cat(cfs), torch.cat(cf_truths)),
    }
    if lpipss:
        metrics["lpips"] = torch.cat(lpipss).mean().item()
        metrics["lpips_grey"] = torch.cat(lpips_greys).mean().item()
    grid = torch.cat(rows, dim=1) if rows else None  # (3, n * H, 3 * W)
    return metrics, grid


def _standard_error(x: torch.Tensor) -> float:
    return (x.double().std() / math.sqrt(len(x))).item() if len(x) > 1 else 0.0


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temporary file, then rename: a crash never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint (tensors and plain values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_pref: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _pick_device(pref: str, d: _Dist) -> torch.device:
    if pref == "cpu" or (pref == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is available; use device=cpu")
    return torch.device("cuda", d.local_rank)


def _write_plots(rows: list[dict[str, Any]], run_dir: Path) -> None:
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


def _save_grid(grid: torch.Tensor, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def _make_scheduler(opt: torch.optim.Optimizer, cfg: Config):
    t = cfg.train
    if t.lr_schedule == "none":
        return None
    if t.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode=METRIC_MODES[t.early_stop_metric],
            factor=t.plateau_factor,
            patience=t.plateau_patience,
        )
    if t.lr_schedule == "linear":  # pix2pix: constant for the first half, then linearly to 0
        half = t.epochs // 2

        def rule(e: int) -> float:
            return 1.0 - max(0, e + 1 - half) / float(t.epochs - half + 1)

        return torch.optim.lr_scheduler.LambdaLR(opt, rule)
    if t.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, t.epochs))
    raise ValueError(f"train.lr_schedule={t.lr_schedule!r}: use none, plateau, linear or cosine")


def validate_config(cfg: Config) -> None:
    """Refuse recipes that cannot train, before any photo is loaded."""
    t = cfg.train
    if t.early_stop_metric not in METRIC_MODES:
        raise ValueError(
            f"train.early_stop_metric={t.early_stop_metric!r}: use one of {sorted(METRIC_MODES)}"
        )
    if t.early_stop_metric == "lpips" and not t.val_lpips:
        raise ValueError(
            "train.early_stop_metric='lpips' needs LPIPS in validation: set train.val_lpips=true"
        )
    if t.lr_schedule not in ("none", "plateau", "linear", "cosine"):
        raise ValueError(
            f"train.lr_schedule={t.lr_schedule!r}: use none, plateau, linear or cosine"
        )
    if t.gan_mode not in ("vanilla", "lsgan"):
        raise ValueError(f"train.gan_mode={t.gan_mode!r}: use vanilla or lsgan")
    if t.epochs < 1 or t.batch_size < 1:
        raise ValueError("train.epochs and train.batch_size must be at least 1")
    if cfg.model.generator not in ARCHITECTURES:
        raise ValueError(
            f"model.generator={cfg.model.generator!r}: use one of {sorted(ARCHITECTURES)}"
        )
    if t.lr_encoder and cfg.model.generator != "mobilenet_unet":
        raise ValueError(
            f"train.lr_encoder={t.lr_encoder} needs a pretrained encoder: "
            "set model.generator='mobilenet_unet' or train.lr_encoder=0"
        )
    if cfg.data.crop < 16:
        raise ValueError(f"data.crop={cfg.data.crop} is too small; use 16 or more")
    m = cfg.model
    if m.head not in ("regression", "classes"):
        raise ValueError(f"model.head={m.head!r}: use regression or classes")
    if m.head == "classes" and m.generator != "mobilenet_unet":
        raise ValueError("model.head='classes' needs model.generator='mobilenet_unet'")
    if t.lambda_class and m.head != "classes":
        raise ValueError(
            f"train.lambda_class={t.lambda_class} needs model.head='classes' (ab bins to predict)"
        )
    if m.head == "classes" and not (t.lambda_class or t.lambda_l1):
        raise ValueError("model.head='classes' needs train.lambda_class or train.lambda_l1 above 0")
    if not 0 <= t.class_rebalance <= 1:
        raise ValueError(f"train.class_rebalance={t.class_rebalance}: use a value in [0, 1]")
    if t.init_from and not Path(t.init_from).exists():
        raise ValueError(
            f"train.init_from={t.init_from!r} does not exist; give a model folder or a checkpoint"
        )


def init_generator(G: nn.Module, source: str | Path) -> list[str]:
    """Copy into G every weight of `source` (model or checkpoint) whose name and shape match.

    -> the names of G's weights that kept their fresh values (e.g. a new head). Refuses a source
    that shares nothing with G.
    """
    src, _ = load_generator(source)
    theirs = src.state_dict()
    mine = G.state_dict()
    same = {k: v for k, v in theirs.items() if k in mine and mine[k].shape == v.shape}
    if not same:
        raise ValueError(f"train.init_from={str(source)!r}: no weight matches this generator")
    G.load_state_dict(same, strict=False)
    return sorted(set(mine) - set(same))


def class_loss_from_photos(
    photos: list[np.ndarray], bins: torch.Tensor, mix: float, stride: int = 4
) -> ColourClassLoss:
    """The rebalanced ab-class loss, its prior counted on every `stride`-th pixel of `photos`."""
    prior = photos_ab_prior(photos, bins, stride)
    return ColourClassLoss(bins, rebalancing_weights(prior, bins, mix=mix))


def fit(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in `run_dir` -> summary (epochs run, best epoch and metric).

    `on_step(epoch, step)` is called after every optimisation step (tests use it to simulate a
    crash). With `resume`, the run continues from `run_dir/last.pt`; only the epoch that was
    interrupted is lost.
    """
    validate_config(cfg)
    t = cfg.train
    d = _init_distributed(t.device)
    device = _pick_device(t.device, d)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and not last_path.is_file():
        raise FileNotFoundError(f"{last_path}: nothing to resume (no last.pt in the run folder)")
    if not resume and last_path.is_file():
        raise FileExistsError(
            f"{run_dir} already holds a run (last.pt); continue it with --resume "
            "or choose another --run-dir"
        )
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(cfg.to_toml())

    torch.manual_seed(t.seed)
    G, D = build_models(cfg.model)
    if t.init_from and not resume:
        fresh = init_generator(G, t.init_from)
        log.info("G starts from %s; fresh: %s", t.init_from, ", ".join(fresh) or "nothing")
    use_cuda = device.type == "cuda"
    channels_last = t.channels_last == "on" or (t.channels_last == "auto" and use_cuda)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G.to(device, memory_format=memory_format)
    D.to(device, memory_format=memory_format)
    amp = t.amp == "on" or (t.amp == "auto" and use_cuda)
    amp_dtype = (
        torch.bfloat16 if (not use_cuda or torch.cuda.is_bf16_supported()) else torch.float16
    )

    def autocast():
        if not amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    g_params: Any = G.parameters()
    if t.lr_encoder:  # group 0 (logged as lr_g) is the decoder, group 1 the pretrained encoder
        g_params = [
            {"params": G.decoder_parameters()},
            {"params": G.encoder_parameters(), "lr": t.lr_encoder},
        ]
    opt_g = torch.optim.Adam(g_params, lr=t.lr_g, betas=(t.beta1, t.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2))
    sched_g, sched_d = _make_scheduler(opt_g, cfg), _make_scheduler(opt_d, cfg)
    gan_loss = GANLoss(t.gan_mode).to(device)
    # loaded before any photo, so that missing LPIPS weights fail at once
    lpips_model = LPIPS.from_pretrained("alex", device) if t.val_lpips else None
    csv_fields = list(CSV_FIELDS)
    if t.val_lpips:
        csv_fields.insert(CSV_FIELDS.index("ssim") + 1, "lpips")

    mode = METRIC_MODES[t.early_stop_metric]
    state: dict[str, Any] = {
        "epoch": 0,
        "best_metric": math.inf if mode == "min" else -math.inf,
        "best_epoch": 0,
        "stale_epochs": 0,
        "history": [],
    }
    if resume:
        ckpt = load_checkpoint(last_path)
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        if sched_g is not None and ckpt.get("sched_g") is not None:
            sched_g.load_state_dict(ckpt["sched_g"])
            sched_d.load_state_dict(ckpt["sched_d"])
        torch.set_rng_state(ckpt["rng_cpu"])
        for k in ("epoch", "best_metric", "best_epoch", "stale_epochs", "history"):
            state[k] = ckpt[k]
        log.info("resumed %s at the end of epoch %d", run_dir, state["epoch"])

    G_train: nn.Module = G
    D_train: nn.Module = D
    if d.world > 1:
        ids = [device.index] if use_cuda else None
        G_train, D_train = DDP(G, device_ids=ids), DDP(D, device_ids=ids)

    dc = cfg.data
    train_files = split_files(dc.root, "train")
    val_files = split_files(dc.root, "val")
    if dc.train_limit:
        train_files = train_files[: dc.train_limit]
    if dc.val_limit:
        val_files = val_files[: dc.val_limit]
    log.info("loading %d training and %d validation photos", len(train_files), len(val_files))
    train_set = RandomCrops(
        load_photos(train_files, dc.load_short_side),
        crop=dc.crop,
        scale=(dc.scale_min, dc.scale_max),
        flip=dc.flip,
        seed=t.seed,
    )
    val_set = CenterCrops.from_files(val_files, size=dc.val_size, short_side=dc.load_short_side)
    val_loader = DataLoader(val_set, batch_size=t.batch_size, num_workers=dc.workers)
    class_loss = None
    if cfg.model.head == "classes":  # the rebalancing prior: the training photos' ab
        class_loss = class_loss_from_photos(train_set.photos, G.bins.cpu(), t.class_rebalance)
        class_loss.to(device)

    per_rank = math.ceil(len(train_set) / d.world)
    steps = math.ceil(per_rank / t.batch_size)
    if t.steps_per_epoch:
        steps = min(steps, t.steps_per_epoch)
    real_label = 1.0 - t.label_smoothing
    summary = {"stopped_early": False}

    for epoch in range(state["epoch"] + 1, t.epochs + 1):
        train_set.set_epoch(epoch)
        if d.world > 1:
            sampler = DistributedSampler(train_set, d.world, d.rank, shuffle=True, seed=t.seed)
            sampler.set_epoch(epoch)
        else:
            gen = torch.Generator().manual_seed(t.seed * 100_003 + epoch)
            sampler = RandomSampler(train_set, generator=gen)
        loader = DataLoader(
            train_set,
            batch_size=t.batch_size,
            sampler=sampler,
            num_workers=dc.workers,
            drop_last=False,
        )
        use_gan = epoch >= t.d_start_epoch
        G_train.train()
        D_train.train()
        sums = {"loss_g_l1": 0.0, "loss_g_class": 0.0, "loss_g_gan": 0.0, "loss_d": 0.0}
        counts = dict.fromkeys(sums, 0)
        seen, start = 0, time.time()
        bar = None
        if progress and d.main:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc=f"epoch {epoch}/{t.epochs}", leave=False, unit="step")
        for step, (L, ab) in enumerate(loader):
            if step >= steps:
                break
            L = L.to(device, memory_format=memory_format)
            ab = ab.to(device, memory_format=memory_format)
            losses = train_step(
                G_train,
                D_train,
                opt_g,
                opt_d,
                gan_loss,
                L,
                ab,
                lambda_l1=t.lambda_l1,
                use_gan=use_gan,
                train_d=use_gan and step % t.d_every == 0,
                real_label=real_label,
                autocast=autocast,
                D_for_g=D,
                class_loss=class_loss,
                lambda_class=t.lambda_class,
            )
            for k, v in losses.items():
                if not math.isnan(v):
                    sums[k] += v
                    counts[k] += 1
            seen += L.shape[0] * d.world
            if bar is not None:
                bar.update(1)
                bar.set_postfix(l1=f"{losses['loss_g_l1']:.4f}")
            if on_step is not None:
                on_step(epoch, step)
        if bar is not None:
            bar.close()
        seconds = time.time() - start
        if d.world > 1:
            # DDP averages gradients, but each process keeps its own BatchNorm statistics: take
            # rank 0's, so every process validates (and decides on early stopping) identically
            for buf in [*G.buffers(), *D.buffers()]:
                dist.broadcast(buf, src=0)

        metrics, grid = validate(G, val_loader, device, t.samples if d.main else 0, lpips_model)
        row = {
            "epoch": epoch,
            **{k: (sums[k] / counts[k] if counts[k] else float("nan")) for k in sums},
            "d_active": int(use_gan),
            **metrics,
            "lr_g": opt_g.param_groups[0]["lr"],
            "lr_d": opt_d.param_groups[0]["lr"],
            "seconds": round(seconds, 2),
            "images_per_second": round(seen / max(seconds, 1e-9), 2),
        }
        state["history"].append(row)
        value = metrics[t.early_stop_metric]
        improved = value < state["best_metric"] if mode == "min" else value > state["best_metric"]
        if improved:
            state.update(best_metric=value, best_epoch=epoch, stale_epochs=0)
        else:
            state["stale_epochs"] += 1
        for sched in (sched_g, sched_d):
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(value)
            elif sched is not None:
                with warnings.catch_warnings():
                    # before the delayed D starts, its optimiser has not stepped yet; its
                    # schedule must still advance with the epochs, which PyTorch warns about
                    warnings.filterwarnings(
                        "ignore", "Detected call of `lr_scheduler.step", UserWarning
                    )
                    sched.step()
        state["epoch"] = epoch

        if d.main:
            ckpt = {
                "config": cfg.to_dict(),
                "generator_config": G.config,
                "generator_arch": cfg.model.generator,
                "G": G.state_dict(),
                "D": D.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "sched_g": sched_g.state_dict() if sched_g is not None else None,
                "sched_d": sched_d.state_dict() if sched_d is not None else None,
                "rng_cpu": torch.get_rng_state(),
                **state,
            }
            if improved:
                save_checkpoint(best_path, ckpt)
                save_pretrained(
                    G,
                    run_dir / "model",
                    metadata={
                        "recipe": cfg.name,
                        "epoch": epoch,
                        "early_stop_metric": t.early_stop_metric,
                        "val_metrics": metrics,
                    },
                )
            save_checkpoint(last_path, ckpt)
            _write_metrics_csv(state["history"], run_dir / "metrics.csv", csv_fields)
            _write_plots(state["history"], run_dir)
            if grid is not None:
                _save_grid(grid, run_dir / "samples" / f"epoch_{epoch:03d}.png")
            log.info(
                "epoch %d: L1 %.4f, val L1 %.4f, PSNR %.2f, SSIM %.4f, %.1f img/s%s",
                epoch, row["loss_g_l1"], metrics["val_l1"], metrics["psnr"], metrics["ssim"],
                row["images_per_second"], " (best)" if improved else "",
            )  # fmt: skip
        if d.world > 1:
            dist.barrier()
        if t.patience and state["stale_epochs"] >= t.patience:
            log.info(
                "early stopping after epoch %d: no better %s for %d epochs",
                epoch, t.early_stop_metric, t.patience,
            )  # fmt: skip
            summary["stopped_early"] = True
            break

    if d.main and cfg.model.head == "classes" and best_path.is_file():
        # how bold the best generator's colour is: chosen on the validation photos
        from pix2color.calibrate import calibrate, calibrated_metadata

        G.load_state_dict(load_checkpoint(best_path)["G"])
        best, meta = calibrate(
            G, val_loader, device, train_photos=train_set.photos, lpips_model=lpips_model
        )
        info = json.loads((run_dir / "model" / "config.json").read_text())
        metadata = calibrated_metadata(info.get("metadata", {}), best, meta)
        save_pretrained(G, run_dir / "model", metadata=metadata)
        summary["temperature"], summary["boost"] = best["temperature"], best["boost"]
        log.info(
            "prior boost %.2f, temperature %.2f chosen on the validation photos",
            best["boost"], best["temperature"],
        )  # fmt: skip

    summary.update(
        epochs_run=state["epoch"],
        best_epoch=state["best_epoch"],
        best_metric=state["best_metric"],
        metric=t.early_stop_metric,
        run_dir=str(run_dir),
    )
    return summary


def _write_metrics_csv(
    rows: list[dict[str, Any]], path: Path, fields: list[str] = CSV_FIELDS
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in fields})
    os.replace(tmp, path)
