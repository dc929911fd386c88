"""Training configuration: frozen dataclasses filled from a TOML recipe, then `key=value` overrides.

A recipe has three tables, [data], [model] and [train], plus an optional top-level `name`.
Unknown keys fail loudly with the list of known ones, so a typo never trains the wrong model.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class DataConfig:
    """Where the photos are and how training crops are made from them."""

    root: str = "data/photos"  # a folder made by `pix2color data prepare` (train/ val/ test/)
    crop: int = 128  # training crop side in pixels
    load_short_side: int = 256  # photos are held in RAM with their short side resized to this
    scale_min: float = 0.3  # random resized crop: fraction of the photo's area, lower bound
    scale_max: float = 1.0
    flip: bool = True  # random horizontal flips
    val_size: int = 256  # validation: centre square crop resized to this side
    val_limit: int = 0  # use at most this many validation photos (0 = all)
    train_limit: int = 0  # use at most this many training photos (0 = all), for quick runs
    workers: int = 0  # DataLoader worker processes (0 = in the training process)


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shapes (see models/unet.py, encoder_unet.py, patchgan.py)."""

    generator: str = "unet"  # "unet" (pix2pix, from scratch) or "mobilenet_unet"
    pretrained: bool = True  # mobilenet_unet: start the encoder from ImageNet weights
    head: str = "regression"  # mobilenet_unet: "regression" (ab + tanh) or "classes" (ab bins)
    temperature: float = 0.38  # "classes": annealed-mean temperature (1 = mean, lower = vivid)
    base_channels: int = 64
    depth: int = 8
    max_channels: int = 512
    dropout: float = 0.5
    dropout_blocks: int = 3
    d_base_channels: int = 64
    d_layers: int = 3  # 3 layers = 70x70 receptive field


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, early stopping and run bookkeeping."""

    epochs: int = 50
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_encoder: float = 0.0  # a pretrained encoder's learning rate (0 = lr_g like the rest of G)
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    lambda_class: float = 0.0  # weight of the rebalanced ab-class cross-entropy (head="classes")
    class_rebalance: float = 0.5  # prior/uniform mix for rebalancing: 0 = full, 1 = none
    init_from: str = ""  # start G from this model or checkpoint (keys whose shapes match)
    gan_mode: str = "vanilla"  # "vanilla" (BCE) or "lsgan" (MSE)
    d_start_epoch: int = 1  # D (and G's GAN term) start at this epoch; before it: L1 only
    d_every: int = 1  # train D on every n-th step once it has started
    label_smoothing: float = 0.0  # real label = 1 - label_smoothing for D
    lr_schedule: str = "none"  # "none", "plateau" (on the early-stop metric), "linear", "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    early_stop_metric: str = "val_l1"  # "val_l1", "psnr", "ssim" or "lpips" (needs val_lpips)
    patience: int = 0  # stop after this many epochs without improvement (0 = never)
    seed: int = 0
    steps_per_epoch: int = 0  # cap on steps per epoch (0 = one pass over the training photos)
    amp: str = "auto"  # "auto" (bf16/fp16 autocast on CUDA only), "on", "off"
    channels_last: str = "auto"  # "auto" (on CUDA), "on", "off"
    num_threads: int = 0  # torch CPU threads (0 = torch's default)
    samples: int = 8  # validation photos in the per-epoch sample grid
    val_lpips: bool = False  # also LPIPS (AlexNet) in validation; needs requirements-weights.txt
    device: str = "auto"  # "auto", "cpu", "cuda"


@dataclass(frozen=True)
class Config:
    """A whole training recipe."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON friendly)."""
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """The resolved recipe as TOML text (written into every run folder)."""
        lines = [f"name = {_toml_value(self.name)}", ""]
        for section in ("data", "model", "train"):
            lines.append(f"[{section}]")
            for k, v in dataclasses.asdict(getattr(self, section)).items():
                lines.append(f"{k} = {_toml_value(v)}")
            lines.append("")
        return "\n".join(lines)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _check_type(where: str, cls: type, key: str, value: Any) -> Any:
    expected = {f.name: f.type for f in dataclasses.fields(cls)}[key]
    default = getattr(cls(), key)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    return value


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from nested dicts, refusing unknown sections and keys."""
    unknown = set(raw) - {"name", *_SECTIONS}
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level keys {sorted(unknown)}; known: name, data, model, train"
        )
    parts: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - known
        if bad:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(bad)} in [{section}]; known: {sorted(known)}"
            )
        checked = {k: _check_type(f"{source}: {section}.{k}", cls, k, v) for k, v in values.items()}
        parts[section] = cls(**checked)
    name = raw.get("name", "run")
    if not isinstance(name, str):
        raise ConfigError(f"{source}: name must be a string, got {name!r}")
    return Config(name=name, **parts)


def parse_override(text: str) -> tuple[str, str, Any]:
    """'train.epochs=5' -> ('train', 'epochs', 5); values are read as TOML, else as strings."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. train.epochs=5")
    key, value = text.split("=", 1)
    if key.count(".") != 1:
        raise ConfigError(f"override {text!r}: the key must be section.key, e.g. train.epochs")
    section, name = key.strip().split(".")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # bare words such as plateau or cuda
    return section, name, parsed


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Read a TOML recipe (or start from the defaults) and apply `section.key=value` overrides."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file; the recipes are in configs/*.toml")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        source = str(path)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        if section not in _SECTIONS:
            raise ConfigError(
                f"override {text!r}: unknown section {section!r}; use data, model, train"
            )
        raw.setdefault(section, {})[name] = value
    return from_dict(raw, source)
