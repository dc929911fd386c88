"""The training loop: `fit(config, run_dir)` reads as the algorithm; its steps are below it."""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from pix2color.models.base import generator_record
from pix2color.models.color_settings import color_knob
from pix2color.models.io import save_pretrained
from pix2color.train.calibrate import calibrate, calibrated_metadata
from pix2color.train.checkpoint import load_checkpoint, save_checkpoint
from pix2color.train.config import EARLY_STOP_METRICS, Config
from pix2color.train.records import (
    CSV_FIELDS,
    save_grid,
    write_metrics_csv,
    write_plots,
)
from pix2color.train.setup import Run, TrainingData, load_data, open_run_folder, start_run
from pix2color.train.step import train_step
from pix2color.train.validation import validate

log = logging.getLogger(__name__)


def fit(
    cfg: Config,
    run_dir,
    *,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in `run_dir` -> summary (epochs run, best epoch and metric).

    A run folder holds config.toml (the resolved recipe), metrics.csv, loss.png, metrics.png,
    samples/epoch_NNN.png (grey | predicted | truth), last.pt and best.pt (checkpoints) and
    model/ (the best generator, calibrated, ready to ship). With `resume` the run continues from
    last.pt; only the epoch that was interrupted is lost. `on_step(epoch, step)` is called after
    every optimisation step (tests use it to simulate a crash). Under `torchrun` the same loop
    runs with DistributedDataParallel.
    """
    run = start_run(cfg, run_dir, resume)
    data = load_data(run)
    open_run_folder(run)
    summary: dict[str, Any] = {"stopped_early": False}
    for epoch in range(run.state["epoch"] + 1, cfg.train.epochs + 1):
        losses = train_one_epoch(run, data, epoch, progress, on_step)
        metrics, grid = validate(
            run.G, data.val_loader, run.device, cfg.train.samples if run.dist.main else 0,
            run.lpips_model,
        )  # fmt: skip
        end_of_epoch(run, epoch, losses, metrics, grid)
        if cfg.train.patience and run.state["stale_epochs"] >= cfg.train.patience:
            log.info(
                "early stopping after epoch %d: no better %s for %d epochs",
                epoch, cfg.train.early_stop_metric, cfg.train.patience,
            )  # fmt: skip
            summary["stopped_early"] = True
            break
    if run.dist.main:
        summary.update(calibrate_best(run, data))
    return {
        **summary,
        "epochs_run": run.state["epoch"],
        "best_epoch": run.state["best_epoch"],
        "best_metric": run.state["best_metric"],
        "metric": cfg.train.early_stop_metric,
        "run_dir": str(run.dir),
    }


def train_one_epoch(
    run: Run,
    data: TrainingData,
    epoch: int,
    progress: bool,
    on_step: Callable[[int, int], None] | None,
) -> dict[str, float]:
    """One pass of `data.steps` optimisation steps -> mean losses, images/s and seconds."""
    t = run.cfg.train
    data.train_set.set_epoch(epoch)
    if run.dist.world > 1:
        sampler = DistributedSampler(
            data.train_set, run.dist.world, run.dist.rank, shuffle=True, seed=t.seed
        )
        sampler.set_epoch(epoch)
    else:
        gen = torch.Generator().manual_seed(t.seed * 100_003 + epoch)
        sampler = RandomSampler(data.train_set, generator=gen)
    loader = DataLoader(
        data.train_set, batch_size=t.batch_size, sampler=sampler, num_workers=run.cfg.data.workers
    )
    use_gan = epoch >= t.d_start_epoch
    run.train_mode()
    sums = dict.fromkeys(("loss_g_l1", "loss_g_class", "loss_g_feat", "loss_g_gan", "loss_d"), 0.0)
    counts = dict.fromkeys(sums, 0)
    seen, start = 0, time.time()
    bar = None
    if progress and run.dist.main:
        from tqdm import tqdm

        bar = tqdm(total=data.steps, desc=f"epoch {epoch}/{t.epochs}", leave=False, unit="step")
    for step, (L, ab, *guidance) in enumerate(loader):  # guidance: a HintUNet's hints, reference
        if step >= data.steps:
            break
        losses = train_step(
            run.G_train, run.D_train, run.opt_g, run.opt_d, run.gan_loss,
            L.to(run.device, memory_format=run.memory_format),
            ab.to(run.device, memory_format=run.memory_format),
            lambda_l1=t.lambda_l1, use_gan=use_gan, train_d=use_gan and step % t.d_every == 0,
            real_label=1.0 - t.label_smoothing, autocast=run.autocast, D_for_g=run.D,
            class_loss=data.class_loss, lambda_class=t.lambda_class,
            feature_loss=data.feature_loss, lambda_feat=t.lambda_feat,
            guidance=tuple(g.to(run.device) for g in guidance),
        )  # fmt: skip
        for k, v in losses.items():
            if not math.isnan(v):
                sums[k] += v
                counts[k] += 1
        seen += L.shape[0] * run.dist.world
        if bar is not None:
            bar.update(1)
            bar.set_postfix(l1=f"{losses['loss_g_l1']:.4f}")
        if on_step is not None:
            on_step(epoch, step)
    if bar is not None:
        bar.close()
    seconds = time.time() - start
    if run.dist.world > 1:
        # DDP averages gradients, but each process keeps its own BatchNorm statistics: take
        # rank 0's, so every process validates (and decides on early stopping) identically
        for buf in [*run.G.buffers(), *run.D.buffers()]:
            dist.broadcast(buf, src=0)
    return {
        **{k: (sums[k] / counts[k] if counts[k] else float("nan")) for k in sums},
        "d_active": int(use_gan),
        "seconds": round(seconds, 2),
        "images_per_second": round(seen / max(seconds, 1e-9), 2),
    }


def end_of_epoch(
    run: Run,
    epoch: int,
    losses: dict[str, float],
    metrics: dict[str, float],
    grid: torch.Tensor | None,
) -> None:
    """Book the epoch: history, early-stopping state, schedules, checkpoints, model, plots."""
    t, state = run.cfg.train, run.state
    row = {"epoch": epoch, **losses, **metrics}
    row.update(lr_g=run.opt_g.param_groups[0]["lr"], lr_d=run.opt_d.param_groups[0]["lr"])
    state["history"].append(row)
    value = metrics[t.early_stop_metric]
    better = value < state["best_metric"] if EARLY_STOP_METRICS[t.early_stop_metric] == "min" else (
        value > state["best_metric"]
    )  # fmt: skip
    if better:
        state.update(best_metric=value, best_epoch=epoch, stale_epochs=0)
    else:
        state["stale_epochs"] += 1
    _step_schedules(run, value)
    state["epoch"] = epoch
    if run.dist.main:
        _save_epoch(run, epoch, metrics, better, grid)
        log.info(
            "epoch %d: L1 %.4f, val L1 %.4f, PSNR %.2f%s, SSIM %.4f, %.1f img/s%s",
            epoch, row["loss_g_l1"], metrics["val_l1"], metrics["psnr"],
            f" ({metrics['psnr_hints']:.2f} with points)" if "psnr_hints" in metrics else "",
            metrics["ssim"], row["images_per_second"], " (best)" if better else "",
        )  # fmt: skip
    if run.dist.world > 1:
        dist.barrier()


def _step_schedules(run: Run, value: float) -> None:
    for sched in (run.sched_g, run.sched_d):
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(value)
        elif sched is not None:
            with warnings.catch_warnings():
                # before the delayed D starts, its optimiser has not stepped yet; its schedule
                # must still advance with the epochs, which PyTorch warns about
                warnings.filterwarnings(
                    "ignore", "Detected call of `lr_scheduler.step", UserWarning
                )
                sched.step()


def _save_epoch(
    run: Run, epoch: int, metrics: dict[str, float], better: bool, grid: torch.Tensor | None
) -> None:
    """last.pt every epoch; best.pt and model/ when the epoch is the best so far; run files."""
    ckpt = {
        "config": run.cfg.to_dict(),
        "generator": generator_record(run.G),
        "G": run.G.state_dict(),
        "D": run.D.state_dict(),
        "opt_g": run.opt_g.state_dict(),
        "opt_d": run.opt_d.state_dict(),
        "sched_g": run.sched_g.state_dict() if run.sched_g is not None else None,
        "sched_d": run.sched_d.state_dict() if run.sched_d is not None else None,
        "rng_cpu": torch.get_rng_state(),
        **run.state,
    }
    if better:
        save_checkpoint(run.best_path, ckpt)
        metadata = {
            "recipe": run.cfg.name,
            "epoch": epoch,
            "early_stop_metric": run.cfg.train.early_stop_metric,
            "val_metrics": metrics,
        }
        save_pretrained(run.G, run.dir / "model", metadata=metadata)
    save_checkpoint(run.last_path, ckpt)
    fields = list(CSV_FIELDS)
    if run.cfg.train.val_lpips:
        fields.insert(CSV_FIELDS.index("ssim") + 1, "lpips")
    if run.cfg.model.hints:
        at = fields.index("dcf") + 1
        hinted = ["val_l1_hints", "psnr_hints", "lpips_hints"]
        fields[at:at] = hinted if run.cfg.train.val_lpips else hinted[:2]
    write_metrics_csv(run.state["history"], run.dir / "metrics.csv", fields)
    write_plots(run.state["history"], run.dir)
    if grid is not None:
        save_grid(grid, run.dir / "samples" / f"epoch_{epoch:03d}.png")


def calibrate_best(run: Run, data: TrainingData) -> dict[str, float]:
    """Choose how bold the best generator's colour is, on the validation photos, and write it
    into model/ -> the chosen setting ({} for a generator without a colour setting).

    A guided-colour model keeps the gain of the automatic model it was made from: its refiner
    learned its corrections against that colour, which another gain would change."""
    if color_knob(run.G) is None or run.cfg.model.hints or not run.best_path.is_file():
        return {}
    run.G.load_state_dict(load_checkpoint(run.best_path)["G"])
    best, meta = calibrate(
        run.G, data.val_loader, run.device, train_photos=data.train_set.photos,
        lpips_model=run.lpips_model,
    )  # fmt: skip
    info = json.loads((run.dir / "model" / "config.json").read_text())
    metadata = calibrated_metadata(info.get("metadata", {}), best, meta)
    save_pretrained(run.G, run.dir / "model", metadata=metadata)
    chosen = {k: best[k] for k in ("gain", "temperature", "boost") if k in best}
    log.info(
        "chosen on the validation photos: %s", ", ".join(f"{k} {v:g}" for k, v in chosen.items())
    )
    return chosen
