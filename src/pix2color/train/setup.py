"""Everything a training run needs before its first step: models, optimisers, data, state."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from pix2color.color.classes import ColorClassLoss, photos_ab_prior, rebalancing_weights
from pix2color.data.dataset import (
    CenterCrops,
    GuidanceSimulation,
    GuidedCenterCrops,
    GuidedCrops,
    RandomCrops,
    load_photos,
    split_files,
)
from pix2color.errors import AlreadyExists, ConfigError, NotFound, UsageError
from pix2color.eval.lpips import LPIPS
from pix2color.models.base import Generator
from pix2color.models.encoder_unet import HintUNet, MobileNetClassUNet, MobileNetUNet
from pix2color.models.io import load_generator
from pix2color.models.patchgan import GANLoss, PatchDiscriminator
from pix2color.models.unet import UNetGenerator
from pix2color.train.checkpoint import check_resumable, load_checkpoint
from pix2color.train.config import EARLY_STOP_METRICS, Config, ModelConfig
from pix2color.train.feature_loss import FeatureLoss

log = logging.getLogger(__name__)


def build_models(cfg: ModelConfig) -> tuple[Generator, PatchDiscriminator]:
    """The generator and discriminator a recipe's [model] describes."""
    if cfg.generator == "mobilenet_unet" and cfg.head == "classes":
        G: Generator = MobileNetClassUNet(
            encoder=cfg.encoder, pretrained=cfg.pretrained, temperature=cfg.temperature
        )
    elif cfg.generator == "mobilenet_unet" and cfg.hints:
        G = HintUNet(
            encoder=cfg.encoder, pretrained=cfg.pretrained, base=cfg.hint_base,
            base_pull=cfg.hint_pull,
            refine_layers=cfg.hint_refine_layers, point_summary=cfg.hint_point_summary,
            nonlocal_points=cfg.hint_nonlocal,
        )  # fmt: skip
    elif cfg.generator == "mobilenet_unet":  # the U-Net shape keys do not apply to it
        G = MobileNetUNet(encoder=cfg.encoder, pretrained=cfg.pretrained)
    else:
        G = UNetGenerator(
            base_channels=cfg.base_channels,
            depth=cfg.depth,
            max_channels=cfg.max_channels,
            dropout=cfg.dropout,
            dropout_blocks=cfg.dropout_blocks,
        )
    D = PatchDiscriminator(base_channels=cfg.d_base_channels, n_layers=cfg.d_layers)
    return G, D


@dataclass
class Dist:
    """This process's place in a `torchrun` group (a single process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_pref: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(pref: str, d: Dist) -> torch.device:
    if pref == "cpu" or (pref == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError("train.device=cuda but no CUDA device is available; use device=cpu")
    return torch.device("cuda", d.local_rank)


def make_scheduler(opt: torch.optim.Optimizer, cfg: Config):
    """The learning-rate schedule of train.lr_schedule, sized to the whole run (or None)."""
    t = cfg.train
    if t.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode=EARLY_STOP_METRICS[t.early_stop_metric],
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
    return None  # "none"


def init_generator(G: nn.Module, source: str | Path) -> list[str]:
    """Copy into G every weight of `source` (model or checkpoint) whose name and shape match.

    -> the names of G's weights that kept their fresh values (e.g. a new head). Refuses a source
    that shares nothing with G. A HintUNet also takes an automatic source's ab gain.
    """
    src, _ = load_generator(source)
    theirs = src.state_dict()
    mine = G.state_dict()
    same = {k: v for k, v in theirs.items() if k in mine and mine[k].shape == v.shape}
    if not same:
        raise ConfigError(f"train.init_from={str(source)!r}: no weight matches this generator")
    G.load_state_dict(same, strict=False)
    if isinstance(G, HintUNet) and isinstance(src, MobileNetUNet):
        G.set_ab_gain(src.ab_gain)  # the start is the automatic model exactly, its gain too
    return sorted(set(mine) - set(same))


def frozen_modules(
    G: nn.Module, train_encoder: str, freeze_automatic: bool = False
) -> list[nn.Module]:
    """The modules of G that train.train_encoder (or train.freeze_automatic: all but a
    HintUNet's guidance layers) keeps frozen; their weights stop learning."""
    if freeze_automatic:
        frozen = [G.encoder, G.bottleneck, G.ups, G.head]
    elif train_encoder == "all":
        return []
    elif train_encoder == "none":
        frozen = [G.encoder]
    else:  # "late": only the stride-32 stages of the encoder learn
        frozen = G.early_encoder_modules()
    for m in frozen:
        m.requires_grad_(False)
    return frozen


def generator_groups(G: nn.Module, cfg: Config) -> list[dict[str, Any]]:
    """G's parameter groups: group 0 (logged as lr_g) the decoder and everything outside a
    pretrained encoder, group 1 (train.lr_encoder, if set) the encoder's learning part."""
    t = cfg.train
    learning = [p for p in G.parameters() if p.requires_grad]
    if not t.lr_encoder:
        return [{"params": learning}]
    ids = {id(p) for p in G.encoder_parameters()}
    return [
        {"params": [p for p in learning if id(p) not in ids]},
        {"params": [p for p in learning if id(p) in ids], "lr": t.lr_encoder},
    ]


def class_loss_from_photos(
    photos: list[np.ndarray], bins: torch.Tensor, mix: float, stride: int = 4
) -> ColorClassLoss:
    """The rebalanced ab-class loss, its prior counted on every `stride`-th pixel of `photos`."""
    prior = photos_ab_prior(photos, bins, stride)
    return ColorClassLoss(bins, rebalancing_weights(prior, bins, mix=mix))


@dataclass
class Run:
    """A training run: its recipe, folder, networks, optimisers and bookkeeping."""

    cfg: Config
    dir: Path
    dist: Dist
    device: torch.device
    G: Generator
    D: PatchDiscriminator
    G_train: nn.Module  # G, or G in DistributedDataParallel
    D_train: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: Any
    sched_d: Any
    gan_loss: GANLoss
    autocast: Callable[[], contextlib.AbstractContextManager]
    memory_format: torch.memory_format
    lpips_model: LPIPS | None
    frozen: list[nn.Module]  # parts of G that do not learn (train.train_encoder); kept in eval
    state: dict[str, Any] = field(default_factory=dict)  # epoch, best metric, history...

    def train_mode(self) -> None:
        """G and D in training mode, except G's frozen parts: their BatchNorm statistics stay."""
        self.G_train.train()
        self.D_train.train()
        for m in self.frozen:
            m.eval()

    @property
    def last_path(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"


def _check_run_folder(cfg: Config, run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """Everything that can be checked before the run folder is touched -> the checkpoint to
    resume from (None for a new run)."""
    t = cfg.train
    if t.init_from and not Path(t.init_from).exists():
        raise ConfigError(
            f"train.init_from={t.init_from!r} does not exist; give a model folder or a checkpoint"
        )
    last = run_dir / "last.pt"
    if not resume:
        if last.is_file():
            raise AlreadyExists(
                f"{run_dir} already holds a run (last.pt); continue it with --resume "
                "or choose another --run-dir"
            )
        return None
    if not last.is_file():
        raise NotFound(f"{last}: nothing to resume (no last.pt in the run folder)")
    ckpt = load_checkpoint(last)
    check_resumable(cfg, ckpt, last)
    return ckpt


def start_run(cfg: Config, run_dir: str | Path, resume: bool) -> Run:
    """Check the run folder, build the networks and optimisers, restore a resumed state.

    Nothing is written yet (see open_run_folder)."""
    t, run_dir = cfg.train, Path(run_dir)
    d = init_distributed(t.device)
    device = pick_device(t.device, d)
    ckpt = _check_run_folder(cfg, run_dir, resume)
    # loaded before anything is written, so that missing LPIPS weights fail at once
    lpips_model = LPIPS.from_pretrained("alex", device) if t.val_lpips else None
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    torch.manual_seed(t.seed)
    G, D = build_models(cfg.model)
    if t.init_from and ckpt is None:
        fresh = init_generator(G, t.init_from)
        log.info("G starts from %s; fresh: %s", t.init_from, ", ".join(fresh) or "nothing")
    use_cuda = device.type == "cuda"
    channels_last = t.channels_last == "on" or (t.channels_last == "auto" and use_cuda)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G.to(device, memory_format=memory_format)
    D.to(device, memory_format=memory_format)
    amp = t.amp == "on" or (t.amp == "auto" and use_cuda)
    amp_dtype = torch.bfloat16 if not use_cuda or torch.cuda.is_bf16_supported() else torch.float16

    def autocast() -> contextlib.AbstractContextManager:
        if not amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    frozen = frozen_modules(G, t.train_encoder, t.freeze_automatic)
    opt_g = torch.optim.Adam(generator_groups(G, cfg), lr=t.lr_g, betas=(t.beta1, t.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2))
    mode = EARLY_STOP_METRICS[t.early_stop_metric]
    state = {
        "epoch": 0,
        "best_metric": math.inf if mode == "min" else -math.inf,
        "best_epoch": 0,
        "stale_epochs": 0,
        "history": [],
    }
    run = Run(
        cfg, run_dir, d, device, G, D, G, D, opt_g, opt_d, make_scheduler(opt_g, cfg),
        make_scheduler(opt_d, cfg), GANLoss(t.gan_mode).to(device), autocast, memory_format,
        lpips_model, frozen, state,
    )  # fmt: skip
    if ckpt is not None:
        _restore(run, ckpt)
    if d.world > 1:
        ids = [device.index] if use_cuda else None
        run.G_train, run.D_train = DDP(G, device_ids=ids), DDP(D, device_ids=ids)
    return run


def open_run_folder(run: Run) -> None:
    """Create the run folder (or reopen it) and write the resolved recipe into it; called only
    once every check has passed and the photos are loaded, so a failed start leaves nothing."""
    if run.dist.main:
        run.dir.mkdir(parents=True, exist_ok=True)
        (run.dir / "config.toml").write_text(run.cfg.to_toml())


def _restore(run: Run, ckpt: dict[str, Any]) -> None:
    """Continue from a checkpoint: weights, optimisers, schedules, RNG and bookkeeping."""
    run.G.load_state_dict(ckpt["G"])
    run.D.load_state_dict(ckpt["D"])
    run.opt_g.load_state_dict(ckpt["opt_g"])
    run.opt_d.load_state_dict(ckpt["opt_d"])
    if run.sched_g is not None and ckpt.get("sched_g") is not None:
        run.sched_g.load_state_dict(ckpt["sched_g"])
        run.sched_d.load_state_dict(ckpt["sched_d"])
    torch.set_rng_state(ckpt["rng_cpu"])
    for k in ("epoch", "best_metric", "best_epoch", "stale_epochs", "history"):
        run.state[k] = ckpt[k]
    log.info("resumed %s at the end of epoch %d", run.dir, run.state["epoch"])


@dataclass
class TrainingData:
    """The training crops, the validation loader, the class loss (class heads) and steps."""

    train_set: RandomCrops
    val_loader: DataLoader
    class_loss: ColorClassLoss | None
    feature_loss: FeatureLoss | None  # train.lambda_feat above 0
    steps: int  # optimisation steps per epoch and process


def load_data(run: Run) -> TrainingData:
    """Load the prepared photos of the recipe's data.root (train and val splits) into RAM."""
    dc, t = run.cfg.data, run.cfg.train
    train_files = split_files(dc.root, "train")
    val_files = split_files(dc.root, "val")
    if dc.train_limit:
        train_files = train_files[: dc.train_limit]
    if dc.val_limit:
        val_files = val_files[: dc.val_limit]
    log.info("loading %d training and %d validation photos", len(train_files), len(val_files))
    crops = dict(
        crop=dc.crop, scale=(dc.scale_min, dc.scale_max), flip=dc.flip, seed=t.seed,
        degrade=dc.degrade,
    )  # fmt: skip
    photos = load_photos(train_files, dc.load_short_side)
    val_set = CenterCrops.from_files(val_files, size=dc.val_size, short_side=dc.load_short_side)
    if run.cfg.model.hints:  # each crop with its simulated guidance; validation's points fixed
        guidance = GuidanceSimulation(
            p_zero=dc.hint_p_zero, max_points=dc.hint_max_points,
            max_radius=dc.hint_max_radius, p_reference=dc.hint_p_reference,
            p_other=dc.hint_p_other,
        )  # fmt: skip
        train_set: RandomCrops = GuidedCrops(photos, guidance=guidance, **crops)
        val_set = GuidedCenterCrops(val_set.photos, size=dc.val_size, n_points=dc.val_hint_points)
    else:
        train_set = RandomCrops(photos, **crops)
    val_loader = DataLoader(val_set, batch_size=t.batch_size, num_workers=dc.workers)
    class_loss = None
    if isinstance(run.G, MobileNetClassUNet):  # the rebalancing prior: the training photos' ab
        class_loss = class_loss_from_photos(train_set.photos, run.G.bins.cpu(), t.class_rebalance)
        class_loss.to(run.device)
    feature_loss = None
    if t.lambda_feat:
        feature_loss = FeatureLoss().to(run.device, memory_format=run.memory_format)
    steps = math.ceil(math.ceil(len(train_set) / run.dist.world) / t.batch_size)
    if t.steps_per_epoch:
        steps = min(steps, t.steps_per_epoch)
    return TrainingData(train_set, val_loader, class_loss, feature_loss, steps)
