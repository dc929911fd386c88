"""The training recipe's schema: frozen dataclasses, their allowed values and their checks.

A recipe has three tables, [data], [model] and [train], plus a top-level `name`; each table is a
frozen dataclass below, and every value is checked when the dataclasses are built: a value that
cannot train fails before anything runs, with a ConfigError that names the key and says what to
use. Reading a recipe from TOML (its `base` chain, `key=value` overrides, unknown keys refused)
is `pix2color.train.recipe`'s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pix2color.errors import ConfigError
from pix2color.models.color_settings import TEMPERATURE_RANGE
from pix2color.models.encoder_unet import ENCODERS, HINT_BASES
from pix2color.models.patchgan import GAN_MODES

__all__ = [
    "AUTO_ON_OFF",
    "DEVICES",
    "EARLY_STOP_METRICS",
    "ENCODERS",
    "GAN_MODES",
    "GENERATORS",
    "HEADS",
    "LR_SCHEDULES",
    "MIN_CROP",
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "validate_config",
]

# The allowed values of the recipe keys that name a choice; train code imports these.
GENERATORS = ("unet", "mobilenet_unet")  # model.generator
HEADS = ("regression", "classes")  # model.head (mobilenet_unet only)
LR_SCHEDULES = ("none", "plateau", "linear", "cosine")  # train.lr_schedule
# train.early_stop_metric: the validation metrics (pix2color.validation) and which way is better
EARLY_STOP_METRICS = {
    "val_l1": "min", "psnr": "max", "ssim": "max", "lpips": "min", "dcf": "min",
    # model.hints: the same with validation's fixed colour points
    "val_l1_hints": "min", "psnr_hints": "max", "lpips_hints": "min",
}  # fmt: skip
TRAIN_ENCODER = ("all", "late", "none")  # train.train_encoder
AUTO_ON_OFF = ("auto", "on", "off")  # train.amp and train.channels_last ("auto": on CUDA only)
DEVICES = ("auto", "cpu", "cuda")  # train.device
MIN_CROP = 16  # the smallest training crop side (data.crop) and validation side (data.val_size)


def _choices(allowed: tuple[str, ...] | dict[str, str]) -> str:
    """("a", "b", "c") -> "a, b or c"."""
    allowed = tuple(allowed)
    return ", ".join(allowed[:-1]) + " or " + allowed[-1] if len(allowed) > 1 else allowed[0]


class _Check:
    """The range checks of one section; each failure names the key and the allowed values."""

    def __init__(self, section: str, values: Any) -> None:
        self.section, self.values = section, values

    def fail(self, name: str, why: str) -> NoReturn:
        value = getattr(self.values, name)
        raise ConfigError(f"{self.section}.{name}={value!r}: {why}")

    def number(self, name: str) -> float:
        value = getattr(self.values, name)
        if not math.isfinite(value):
            self.fail(name, "must be a finite number")
        return value

    def above(self, name: str, lo: float, hint: str = "") -> None:
        if not self.number(name) > lo:
            self.fail(name, f"must be above {lo:g}{hint}")

    def at_least(self, name: str, lo: float, hint: str = "") -> None:
        if not self.number(name) >= lo:
            self.fail(name, f"must be at least {lo:g}{hint}")

    def within(
        self,
        name: str,
        lo: float,
        hi: float,
        *,
        above_lo: bool = False,
        below_hi: bool = False,
        hint: str = "",
    ) -> None:
        """lo <= value <= hi; `above_lo` and `below_hi` leave out the ends."""
        value = self.number(name)
        ok_lo = value > lo if above_lo else value >= lo
        ok_hi = value < hi if below_hi else value <= hi
        if not (ok_lo and ok_hi):
            low = f"above {lo:g}" if above_lo else f"at least {lo:g}"
            high = f"below {hi:g}" if below_hi else f"at most {hi:g}"
            self.fail(name, f"must be {low} and {high}{hint}")

    def one_of(self, name: str, allowed: tuple[str, ...] | dict[str, str]) -> None:
        if getattr(self.values, name) not in allowed:
            self.fail(name, f"use {_choices(allowed)}")


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
    # the chance that a training crop's grey input is aged like an old print (blur, grain, JPEG
    # blocks, faded contrast; the colour target stays the photo's own): 0 = never
    degrade: float = 0.0
    # guided colour (model.hints=true): the guidance simulated from the truth per training crop
    # (data/dataset.py GuidanceSimulation) and the fixed points of validation
    hint_p_zero: float = 0.125  # chance of a crop without points
    hint_max_points: int = 50  # otherwise 1..this many points, log-uniform
    hint_max_radius: int = 4  # each point's radius, uniform 0..this (pixels)
    hint_p_reference: float = 0.3  # chance of a reference histogram
    hint_p_other: float = 0.5  # of those, the chance it is of another crop of the photo
    val_hint_points: int = 10  # points per validation photo (fixed, seeded by its index)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse values that cannot train (ConfigError naming the key)."""
        c = _Check("data", self)
        if not self.root:
            c.fail("root", "give the folder made by `pix2color data prepare` (train/ val/ test/)")
        c.at_least("crop", MIN_CROP)
        if self.crop > self.load_short_side:
            c.fail(
                "crop",
                f"must not be above data.load_short_side={self.load_short_side} (photos are held "
                "at that short side, so a bigger crop would only be an enlarged smaller cut); "
                "lower data.crop or raise data.load_short_side",
            )
        for name in ("scale_min", "scale_max"):
            c.within(name, 0, 1, above_lo=True, hint=" (a fraction of the photo's area)")
        if self.scale_min > self.scale_max:
            c.fail("scale_min", f"must not be above data.scale_max={self.scale_max!r}")
        c.at_least("val_size", MIN_CROP)
        for name in ("val_limit", "train_limit", "workers"):
            c.at_least(name, 0)
        c.within("degrade", 0, 1, hint=" (a probability per training crop)")
        for name in ("hint_p_zero", "hint_p_reference", "hint_p_other"):
            c.within(name, 0, 1, hint=" (a probability per training crop)")
        c.at_least("hint_max_points", 1)
        c.at_least("hint_max_radius", 0)
        c.at_least("val_hint_points", 0)


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shapes (see models/unet.py, encoder_unet.py, patchgan.py)."""

    generator: str = "unet"  # "unet" (pix2pix, from scratch) or "mobilenet_unet"
    # mobilenet_unet: the ImageNet encoder, "mobilenet_v2" or "efficientnet_lite0/1/2"
    encoder: str = "mobilenet_v2"
    pretrained: bool = True  # mobilenet_unet: start the encoder from ImageNet weights
    head: str = "regression"  # mobilenet_unet: "regression" (ab + tanh) or "classes" (ab bins)
    temperature: float = 0.38  # "classes": annealed-mean temperature (1 = mean, lower = vivid)
    # mobilenet_unet, regression head: a guided-colour HintUNet (colour points and a reference
    # photo as inputs; models/encoder_unet.py)
    hints: bool = False
    # model.hints: the colour with points the refiner starts from ("approx": the points' spread
    # over grey; "classical": the exact classical propagation over the automatic colour), the
    # refiner's convolutions, and whether it reads a summary of all points (HintUNet's docstring)
    hint_base: str = "approx"
    hint_pull: float = 1e-4  # "classical": its pull back to automatic (propagate.PULL's unit)
    hint_refine_layers: int = 2
    hint_point_summary: bool = False
    hint_nonlocal: bool = False  # the points' change also carried by likeness (nonlocal_shift)
    base_channels: int = 64
    depth: int = 8
    max_channels: int = 512
    dropout: float = 0.5
    dropout_blocks: int = 3
    d_base_channels: int = 64
    d_layers: int = 3  # 3 layers = 70x70 receptive field

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse values that cannot build a network (ConfigError naming the key)."""
        c = _Check("model", self)
        c.one_of("generator", GENERATORS)
        c.one_of("head", HEADS)
        c.one_of("encoder", ENCODERS)
        c.one_of("hint_base", HINT_BASES)
        c.at_least("hint_refine_layers", 2)
        c.within("hint_pull", 1e-7, 1e-2)
        if self.hints and (self.generator != "mobilenet_unet" or self.head != "regression"):
            raise ConfigError(
                "model.hints=true needs model.generator='mobilenet_unet' and "
                f"model.head='regression' (got {self.generator!r} and {self.head!r})"
            )
        if self.head == "classes" and self.generator != "mobilenet_unet":
            raise ConfigError("model.head='classes' needs model.generator='mobilenet_unet'")
        if self.encoder != "mobilenet_v2" and self.generator != "mobilenet_unet":
            raise ConfigError(
                f"model.encoder={self.encoder!r} needs model.generator='mobilenet_unet' (the "
                "unet generator has no ImageNet encoder)"
            )
        c.within("temperature", *TEMPERATURE_RANGE, hint=" (lower: bolder colour)")
        for name in ("base_channels", "max_channels", "d_base_channels", "d_layers"):
            c.at_least(name, 1)
        c.at_least("depth", 2)
        c.within("dropout", 0, 1, below_hi=True)
        c.at_least("dropout_blocks", 0)


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
    # weight of a feature (perceptual) term: the distance between the predicted and the true
    # photo's features in a frozen ImageNet MobileNetV2, a network no metric uses (0 = off)
    lambda_feat: float = 0.0
    # which part of a pretrained encoder learns: "all", "late" (only its stride-32 stages) or
    # "none" (frozen, its BatchNorm statistics too)
    train_encoder: str = "all"
    # model.hints: keep the whole automatic model as it was (weights and BatchNorm statistics);
    # only the guidance layers learn, so without guidance the colour stays exactly the source's
    freeze_automatic: bool = False
    class_rebalance: float = 0.5  # prior/uniform mix for rebalancing: 0 = full, 1 = none
    init_from: str = ""  # start G from this model or checkpoint (keys whose shapes match)
    gan_mode: str = "vanilla"  # "vanilla" (BCE) or "lsgan" (MSE)
    d_start_epoch: int = 1  # D (and G's GAN term) start at this epoch; before it: L1 only
    d_every: int = 1  # train D on every n-th step once it has started
    label_smoothing: float = 0.0  # real label = 1 - label_smoothing for D
    lr_schedule: str = "none"  # "none", "plateau" (on the early-stop metric), "linear", "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    early_stop_metric: str = "val_l1"  # one of EARLY_STOP_METRICS; "lpips" needs val_lpips
    patience: int = 0  # stop after this many epochs without improvement (0 = never)
    seed: int = 0
    steps_per_epoch: int = 0  # cap on steps per epoch (0 = one pass over the training photos)
    amp: str = "auto"  # "auto" (bf16/fp16 autocast on CUDA only), "on", "off"
    channels_last: str = "auto"  # "auto" (on CUDA), "on", "off"
    num_threads: int = 0  # torch CPU threads (0 = torch's default)
    samples: int = 8  # validation photos in the per-epoch sample grid
    val_lpips: bool = False  # also LPIPS (AlexNet) in validation; needs requirements-weights.txt
    device: str = "auto"  # "auto", "cpu", "cuda"

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse values that cannot train (ConfigError naming the key)."""
        c = _Check("train", self)
        c.at_least("epochs", 1)
        c.at_least("batch_size", 1)
        c.above("lr_g", 0)
        c.above("lr_d", 0)
        c.at_least("lr_encoder", 0, " (0: the same as train.lr_g)")
        c.within("beta1", 0, 1, below_hi=True)
        c.within("beta2", 0, 1, below_hi=True)
        c.at_least("lambda_l1", 0)
        c.at_least("lambda_class", 0)
        c.at_least("lambda_feat", 0)
        c.one_of("train_encoder", TRAIN_ENCODER)
        c.within("class_rebalance", 0, 1)
        c.one_of("gan_mode", GAN_MODES)
        c.at_least("d_start_epoch", 1, " (a value above train.epochs: no discriminator)")
        c.at_least("d_every", 1)
        c.within("label_smoothing", 0, 0.5, below_hi=True)
        c.one_of("lr_schedule", LR_SCHEDULES)
        c.within("plateau_factor", 0, 1, above_lo=True, below_hi=True)
        c.one_of("early_stop_metric", EARLY_STOP_METRICS)
        if self.early_stop_metric.startswith("lpips") and not self.val_lpips:
            raise ConfigError(
                f"train.early_stop_metric={self.early_stop_metric!r} needs LPIPS in validation: "
                "set train.val_lpips=true"
            )
        for name in ("plateau_patience", "patience", "seed", "steps_per_epoch", "num_threads"):
            c.at_least(name, 0)
        c.at_least("samples", 0)  # 0: no sample grids
        c.one_of("amp", AUTO_ON_OFF)
        c.one_of("channels_last", AUTO_ON_OFF)
        c.one_of("device", DEVICES)


@dataclass(frozen=True)
class Config:
    """A whole training recipe."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse combinations of sections that cannot train (ConfigError naming the keys)."""
        m, t = self.model, self.train
        if t.lr_encoder and m.generator != "mobilenet_unet":
            raise ConfigError(
                f"train.lr_encoder={t.lr_encoder} needs a pretrained encoder: "
                "set model.generator='mobilenet_unet' or train.lr_encoder=0"
            )
        if t.freeze_automatic and not m.hints:
            raise ConfigError(
                "train.freeze_automatic=true needs a guided-colour model: set model.hints=true"
            )
        if t.train_encoder != "all" and m.generator != "mobilenet_unet":
            raise ConfigError(
                f"train.train_encoder={t.train_encoder!r} needs a pretrained encoder: "
                "set model.generator='mobilenet_unet' or train.train_encoder='all'"
            )
        if t.early_stop_metric.endswith("_hints") and not m.hints:
            raise ConfigError(
                f"train.early_stop_metric={t.early_stop_metric!r} needs a guided-colour model: "
                "set model.hints=true or choose a metric without _hints"
            )
        if t.lambda_class and m.head != "classes":
            raise ConfigError(
                f"train.lambda_class={t.lambda_class} needs model.head='classes' "
                "(ab bins to predict)"
            )
        if m.head == "classes" and not (t.lambda_class or t.lambda_l1):
            raise ConfigError(
                "model.head='classes' needs train.lambda_class or train.lambda_l1 above 0"
            )

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


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def validate_config(cfg: Config) -> None:
    """Run every check of `cfg` again; a ConfigError names the first key that cannot train.

    A Config is checked when it is built, so this only matters to code that wants to say so.
    """
    for part in (cfg.data, cfg.model, cfg.train, cfg):
        part.check()
