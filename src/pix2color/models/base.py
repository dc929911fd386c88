"""What every pix2color generator shares: its saved config, its name, its padding.

The constructor's keyword arguments ARE the saved config (diffusers' `register_to_config`
idea): `@saves_config` on `__init__` records them, with defaults filled in, as `self.config`,
and `config.json` or a checkpoint stores `{"architecture": G.architecture, "config": G.config}`
(see `generator_record`), from which models/io.py rebuilds the same network.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v  # tuples come back from JSON as lists


def saves_config(init: Callable) -> Callable:
    """Decorate a generator's `__init__` so that its keyword arguments become `self.config`.

    Arguments named in the class's `config_fixed` are saved with that value instead (e.g.
    `pretrained=False`: rebuilding trained weights must never need the ImageNet file). The
    config exists before the body runs, so the body may record a value it resolves (e.g. the
    number of bins it computed for `n_bins=0`).
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        config = {k: _jsonable(v) for k, v in bound.arguments.items() if k != "self"}
        # a plain attribute, set before nn.Module.__init__ runs in the body (which keeps it)
        object.__setattr__(self, "config", {**config, **type(self).config_fixed})
        init(self, *args, **kwargs)

    return wrapper


class Generator(nn.Module):
    """L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1], any H and W.

    Subclasses set `architecture` (the name saved with the weights), `factor` (sides are padded
    to a multiple of it) and `color_knob` ("gain", "temperature" or None: see
    models/color_settings.py), and decorate `__init__` with `@saves_config`.
    """

    architecture: ClassVar[str]
    color_knob: ClassVar[str | None] = None
    config_fixed: ClassVar[dict[str, Any]] = {}
    factor: int
    config: dict[str, Any]


def generator_record(G: Generator) -> dict[str, Any]:
    """How a generator describes itself in config.json and in checkpoints: name and config."""
    return {"architecture": G.architecture, "config": dict(G.config)}


def pad_to_multiple(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(..., H, W) -> the same, edge-replicated at the bottom and right to multiples of `factor`.

    The caller crops the output back with `[..., :H, :W]`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
