"""Training checkpoints: one self-describing file per run state, written atomically.

A checkpoint holds the resolved recipe ("config"), the generator record ("generator": the same
{"architecture", "config"} as a model folder's config.json, so `load_generator` rebuilds G from
it), the weights and optimiser states of G and D, the schedulers, the RNG state and the run's
bookkeeping (epoch, best metric, history).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from pix2color.errors import ConfigError
from pix2color.files import replacing
from pix2color.train.config import Config


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temporary file, then rename: a crash never leaves half a checkpoint."""
    with replacing(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint (tensors and plain values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def check_resumable(cfg: Config, ckpt: dict[str, Any], path: Path) -> None:
    """Refuse to resume `ckpt` with a recipe whose [model] differs from the one it was trained
    with: the weights would not fit. Names every key that differs. The [data] and [train]
    tables may change (more epochs, another learning rate).
    """
    saved = ckpt.get("config", {}).get("model")
    if saved is None:
        return  # a checkpoint without its recipe: the weights' shapes are checked on loading
    now = cfg.to_dict()["model"]
    # keys added since the checkpoint was written hold their defaults in it
    defaults = dataclasses.asdict(type(cfg.model)())
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    differ = sorted(k for k in now.keys() | saved.keys() if now.get(k) != saved.get(k))
    if differ:
        changes = ", ".join(f"model.{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in differ)
        raise ConfigError(
            f"{path} was trained with another [model] than this recipe ({changes}); resume with "
            f"the recipe it was started with ({path.parent / 'config.toml'}), or start a new run "
            "with another --run-dir. The run folder was left as it was."
        )
