"""Score colorizers on held-out photos with the metrics of `pix2color.metrics`.

The truth is either the test split of a prepared folder (`load_test_split`: each photo's centre
square resized to the working size, bicubic, like validation; the protocol of the published
ImageNet comparisons) or a folder of photos matched by name to a folder of results from any tool
(`load_pairs`). A model colours the 8-bit grey version of each truth photo (Pillow's "L",
Rec. 601 luma), what a user would give it, through `Colorizer.colorize_batch`, exactly as
`pix2color colorize` does. Every evaluation scores a `grey` row too, the grey input itself as
RGB: the floor every model must beat. `evaluate_report` writes the results as files.

Colour points (`WithPoints`, `evaluate --hints`): a model is also scored with N points per photo
simulated from the truth (`simulated_points`): positions uniform at random over the evaluated
photo, drawn from a generator seeded by the photo's name (the same points for every model, run
and N, and the first N of the 50 drawn, so the curve adds points rather than redrawing them);
each a disc of radius HINT_RADIUS pixels (5x5 at 256x256, the middle of Zhang et al. 2017's 1x1
to 9x9 patches); its colour the mean Lab of the truth over the disc (its ab is what counts; the
photo keeps its own L), given as an 8-bit RGB colour as a person would.

A reference photo (`WithReference`, `evaluate --reference`): another photo of the same scene is
rarely available, so each photo is given **its own palette from a different crop**: the
reference is the truth's LEFT half (in colour), and every figure is computed on the RIGHT half
only (`evaluate(..., right_half_only=True)`: truth, grey input and every output are cut to
their right halves before scoring), the part the reference does not show, so no score can come
from copying the reference's content. Rows: the automatic colour (no reference), the own
palette (`OWN`: photo k's own left half), another photo's palette (`OTHER`: photo k takes the
left half of photo (k + n // 2) mod n of the set, in the split's order, manifest.csv's or else
sorted by path: what a reference that does not match does), and the grey input, the floor. A
reference half without colour (mean chroma under `reference.MIN_CHROMA`) gives no palette: a
photo given it keeps its automatic colour in that row, and the report says which
(`colourless_references`). bench/bench_reference.py uses the same protocol and tunes the
transfer's settings on the validation split.
"""

from __future__ import annotations

import logging
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from pix2color.color.lab import lab_to_rgb, rgb_to_lab
from pix2color.eval import fid as F
from pix2color.eval import lpips as L
from pix2color.eval import metrics as M
from pix2color.eval.testset import TestSet
from pix2color.guide.points import Point
from pix2color.guide.reference import Palette, ReferencePhotoError, palette_of
from pix2color.inference import spine
from pix2color.photo import photo_from_image

log = logging.getLogger(__name__)

HINT_COUNTS = (0, 1, 2, 5, 10, 20, 50)  # points per photo in `evaluate --hints`' curve
HINT_RADIUS = 2  # pixels of the evaluated photo
METRIC_KEYS = ("psnr", "ssim", "lpips", "fid", "kid", "colorfulness", "delta_cf", "ciede2000")
GRAY = "grey"  # the row of the grey input itself
OWN, OTHER = "own", "other"  # whose left half is a photo's reference (module docstring)


def _tensor(images: list[np.ndarray]) -> torch.Tensor:
    """[(H, W, 3) uint8] of one size -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def _same_size_batches(n: int, shapes: list[tuple], batch: int) -> list[range]:
    """Consecutive index ranges of at most `batch` images that share one shape."""
    out, start = [], 0
    for i in range(1, n + 1):
        if i == n or shapes[i] != shapes[start] or i - start == batch:
            out.append(range(start, i))
            start = i
    return out


def features(images: list[np.ndarray], device: str = "cpu", bar=None) -> np.ndarray:
    """[(H, W, 3) uint8] -> (N, 2048) FID Inception features."""
    out = []
    for r in _same_size_batches(len(images), [im.shape for im in images], 16):
        out.append(F.inception_features(_tensor([images[i] for i in r]).to(device)))
        if bar is not None:
            bar.update(len(r))
    return np.concatenate(out)


def score(
    pred: list[np.ndarray],
    truth: list[np.ndarray],
    truth_feats: np.ndarray,
    truth_cf: torch.Tensor,
    *,
    lpips_net: str = "alex",
    device: str = "cpu",
    bar=None,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Predictions vs truths (lists of (H, W, 3) uint8) -> (set metrics, per-image metrics)."""
    per: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "lpips", "ciede2000")}
    per["colorfulness"] = []
    for r in _same_size_batches(len(pred), [p.shape for p in pred], 8):
        p, t = _tensor([pred[i] for i in r]), _tensor([truth[i] for i in r])
        per["psnr"] += M.psnr(p, t).tolist()
        per["ssim"] += M.ssim(p, t).tolist()
        per["lpips"] += L.lpips(p.to(device), t.to(device), net=lpips_net).tolist()
        per["ciede2000"] += M.ciede2000(p, t).tolist()
        per["colorfulness"] += M.colorfulness(p).tolist()
        if bar is not None:
            bar.update(len(r) / 2)
    feats = features(pred, device, bar=_HalfBar(bar))
    n = len(pred)
    # row k of each is one photo: the paired estimator never scores an output against its truth
    kid, kid_std = F.kid_from_features(feats, truth_feats, paired=True)
    cf = torch.tensor(per["colorfulness"], dtype=torch.float64)
    result = {
        "psnr": float(np.mean(per["psnr"])),
        "ssim": float(np.mean(per["ssim"])),
        "lpips": float(np.mean(per["lpips"])),
        "fid": F.fid_from_features(feats, truth_feats),
        "kid": kid,
        "colorfulness": float(cf.mean()),
        "delta_cf": M.delta_colorfulness(cf, truth_cf),
        "ciede2000": float(np.mean(per["ciede2000"])),
        "n": n,
        "kid_std": kid_std,
        "kid_subset_size": min(F.KID_SUBSET_SIZE, n),
        "fid_reliable": n >= F.FID_MIN_IMAGES,
        "kid_reliable": n >= F.KID_MIN_IMAGES,
        "colorfulness_truth": float(truth_cf.mean()),
    }
    return result, per


class _HalfBar:
    """Forwards half of each update: scoring a photo counts one step, metrics then features."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def update(self, n: float) -> None:
        if self.bar is not None:
            self.bar.update(n / 2)


def _colorfulness_of(images: list[np.ndarray]) -> torch.Tensor:
    """[(H, W, 3) uint8] of any sizes -> (N,) colourfulness."""
    parts = [
        M.colorfulness(_tensor([images[i] for i in r]))
        for r in _same_size_batches(len(images), [im.shape for im in images], 16)
    ]
    return torch.cat(parts)


def _gray_rgb(gray: list[np.ndarray]) -> list[np.ndarray]:
    return [np.repeat(g[..., None], 3, axis=2) for g in gray]


def colorize_set(colorizer, gray: list[np.ndarray], batch_size: int = 8, bar=None) -> list:
    """Colour grey photos ((H, W) uint8) with a Colorizer -> [(H, W, 3) uint8 RGB]."""
    out = []
    for i in range(0, len(gray), batch_size):
        photos = [photo_from_image(Image.fromarray(g, "L")) for g in gray[i : i + batch_size]]
        out += [np.asarray(img.convert("RGB")) for img in colorizer.colorize_batch(photos)]
        if bar is not None:
            bar.update(len(photos))
    return out


def simulated_points(truth: np.ndarray, n: int, name: str, radius: int = HINT_RADIUS):
    """n colour points a person could give, from the truth (H, W, 3) uint8 (module docstring)
    -> [Point]; the same name always gives the same points, the first n of one sequence."""
    h, w = truth.shape[:2]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    xy = rng.integers(0, (w, h), size=(max(n, max(HINT_COUNTS)), 2))[:n]
    lab = rgb_to_lab(truth)  # (H, W, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    points = []
    for x, y in xy:
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= radius * radius
        mean = lab[disc].mean(axis=0)  # (3,) L, a, b
        rgb = np.clip(lab_to_rgb(mean[None, None]) * 255 + 0.5, 0, 255).astype(np.uint8)
        points.append(Point(float(x), float(y), tuple(int(v) for v in rgb[0, 0]), radius))
    return points


class WithPoints:
    """A Colorizer given n colour points per photo simulated from the truth: `evaluate` colours
    a TestSet with it as with the Colorizer alone (one row of the --hints curve)."""

    def __init__(self, colorizer, n: int, radius: int = HINT_RADIUS) -> None:
        self.colorizer, self.n, self.radius = colorizer, n, radius

    def colorize_set(self, test: TestSet, batch_size: int = 8, bar=None) -> list[np.ndarray]:
        """Colour test.grey with each photo's simulated points -> [(H, W, 3) uint8 RGB]."""
        out = []
        for i in range(0, len(test.gray), batch_size):
            photos = [
                photo_from_image(Image.fromarray(g, "L")) for g in test.gray[i : i + batch_size]
            ]
            points = [
                simulated_points(test.truth[k], self.n, test.names[k], self.radius)
                for k in range(i, i + len(photos))
            ]
            images = self.colorizer.colorize_batch(photos, points=points)
            out += [np.asarray(img.convert("RGB")) for img in images]
            if bar is not None:
                bar.update(len(photos))
        return out


def left_half(image: np.ndarray) -> np.ndarray:
    """(H, W, ...) -> (H, W // 2, ...): the part that serves as the reference."""
    return image[:, : image.shape[1] // 2]


def right_half(image: np.ndarray) -> np.ndarray:
    """(H, W, ...) -> (H, W - W // 2, ...): the part that is scored with a reference."""
    return image[:, image.shape[1] // 2 :]


def right_halves(test: TestSet) -> TestSet:
    """The same photos cut to their right halves, truth and grey input alike."""
    return TestSet(
        test.names, [right_half(t) for t in test.truth], [right_half(g) for g in test.gray]
    )


def reference_index(k: int, n: int, which: str) -> int:
    """The photo whose left half is photo k's reference: k itself (OWN), or the photo half the
    set away (OTHER), never k itself when n >= 2."""
    if which not in (OWN, OTHER):
        raise ValueError(f"which reference: {which!r}; use {OWN!r} or {OTHER!r}")
    return k if which == OWN else (k + n // 2) % n


def reference_halves(test: TestSet, which: str) -> list[np.ndarray]:
    """Each photo's reference, (H, W // 2, 3) uint8: a left half of the set's truths."""
    n = len(test.truth)
    return [left_half(test.truth[reference_index(k, n, which)]) for k in range(n)]


def reference_palettes(test: TestSet, which: str) -> list[Palette | None]:
    """Each photo's reference palette; None where the reference half has no colour."""
    out: list[Palette | None] = []
    for k, half in enumerate(reference_halves(test, which)):
        try:
            out.append(palette_of(half, name=test.names[k]))
        except ReferencePhotoError:
            out.append(None)
    return out


def colorless_references(test: TestSet) -> list[str]:
    """The photos whose left half has no colour, so gives no palette (module docstring)."""
    return [name for name, p in zip(test.names, reference_palettes(test, OWN), strict=True)
            if p is None]  # fmt: skip


class WithReference:
    """A Colorizer given each photo's reference palette, its own left half (OWN) or another
    photo's (OTHER): `evaluate` colours a TestSet with it as with the Colorizer alone, and
    scores right halves with right_half_only=True (one row of --reference's table)."""

    def __init__(self, colorizer, which: str) -> None:
        reference_index(0, 1, which)  # refuses an unknown `which` now, not after the network
        self.colorizer, self.which = colorizer, which

    def colorize_set(self, test: TestSet, batch_size: int = 8, bar=None) -> list[np.ndarray]:
        """Colour test.grey, each photo like its reference -> [(H, W, 3) uint8 RGB], whole."""
        palettes = reference_palettes(test, self.which)
        c, out = self.colorizer, []
        for i in range(0, len(test.gray), batch_size):
            photos = [
                photo_from_image(Image.fromarray(g, "L")) for g in test.gray[i : i + batch_size]
            ]
            # one forward pass for the batch; then each photo's own reference, as `colorize
            # --reference` applies it (a guided model reads it, any other gets the transfer)
            guidances = [spine.Guidance(reference=palettes[k]) for k in range(i, i + len(photos))]
            for image in spine.colorize(c, photos, guidances):
                out.append(np.asarray(image.convert("RGB")))
            if bar is not None:
                bar.update(len(photos))
        return out


# ---------------------------------------------------------------- the whole run
@dataclass
class Evaluation:
    """What `evaluate` measured, for `evaluate_report` to write."""

    test: TestSet
    report: dict[str, Any]  # what report.json holds
    per_image: dict[str, dict[str, list[float]]]  # model -> metric -> one value per photo
    images: dict[str, list[np.ndarray]]  # model -> the images scored, grey first
    # right_half_only: {label: each photo's reference (a left half)}, shown in the sheets
    references: dict[str, list[np.ndarray]] = field(default_factory=dict)
    # a folder prepared with --split-by source: the in-source test split (test_in), scored
    # the same way; `report` is then the out-of-source test split's, with "in_source" added
    in_source: Evaluation | None = None

    def add_in_source(self, other: Evaluation) -> None:
        """Join the in-source split's evaluation: report["in_source"] holds its figures."""
        self.in_source = other
        self.report["in_source"] = {k: v for k, v in other.report.items() if k != "protocol"}


def evaluate(
    test: TestSet,
    predictions: dict[str, list[np.ndarray] | Any],
    *,
    protocol: dict[str, Any],
    notes: list[str] | None = None,
    size: int | None = None,
    lpips_net: str = "alex",
    device: str = "cpu",
    progress: bool = True,
    right_half_only: bool = False,
) -> Evaluation:
    """Score the grey baseline and every model against the truth.

    `predictions` maps a model name to its coloured images, or to a Colorizer (WithPoints,
    WithReference) that colours `test.grey` here. right_half_only: every image, truth and grey
    input included, is cut to its right half before scoring (the reference protocol: module
    docstring); the Evaluation then holds the halves, and the references for the sheets.
    """
    from tqdm import tqdm

    n = len(test.names)
    scored = right_halves(test) if right_half_only else test
    todo = {GRAY: _gray_rgb(test.gray), **predictions}
    to_color = n * sum(not isinstance(v, list) for v in todo.values())
    bar = tqdm(total=n + len(todo) * n + to_color, unit="photo", disable=not progress,
               file=sys.stderr, desc="truth features")  # fmt: skip
    started = time.time()
    truth_feats = features(scored.truth, device, bar=bar)
    truth_cf = _colorfulness_of(scored.truth)
    models: dict[str, dict[str, Any]] = {}
    per_image: dict[str, dict[str, list[float]]] = {}
    images: dict[str, list[np.ndarray]] = {}
    for name, value in todo.items():
        t0 = time.time()
        if isinstance(value, list):
            pred = value
        else:
            bar.set_description(f"colouring ({name})")
            if isinstance(value, (WithPoints, WithReference)):
                pred = value.colorize_set(test, bar=bar)
            else:
                pred = colorize_set(value, test.gray, bar=bar)
        color_s = time.time() - t0
        if right_half_only:
            pred = [right_half(p) for p in pred]
        bar.set_description(f"scoring {name}")
        models[name], per_image[name] = score(
            pred, scored.truth, truth_feats, truth_cf, lpips_net=lpips_net, device=device, bar=bar
        )
        if not isinstance(value, list):
            models[name]["colorize_ms_per_photo"] = round(1000 * color_s / n, 1)
        models[name]["score_s"] = round(time.time() - t0 - color_s, 1)
        images[name] = pred
    bar.close()
    report = {
        "protocol": {**protocol, "size": size, "lpips_net": lpips_net, "device": device},
        "n": n,
        "fid_reliable": n >= F.FID_MIN_IMAGES,
        "notes": _sample_size_notes(n) + list(notes or []),
        "models": models,
        "photos": test.names,
        "seconds": round(time.time() - started, 1),
    }
    references = {}
    if right_half_only:
        references = {f"{which} reference": reference_halves(test, which) for which in (OWN, OTHER)}
    return Evaluation(scored, report, per_image, images, references=references)


def _sample_size_notes(n: int) -> list[str]:
    """What the figures of FID and KID on n photos are worth, when that needs saying."""
    notes = []
    if n < F.FID_MIN_IMAGES:
        notes.append(
            f"FID on {n} images (fewer than {F.FID_MIN_IMAGES}, the feature dimension) is biased "
            "upwards and unstable: use it only to rank models on this same set, and prefer KID "
            f"(unbiased; subsets of {min(F.KID_SUBSET_SIZE, n)} images) for comparisons."
        )
    if n < F.KID_MIN_IMAGES:
        notes.append(
            f"† KID on {n} images (fewer than {F.KID_MIN_IMAGES}) is too few to trust: its spread "
            "from one set of photos to another is as large as the differences between models; "
            "read it as a rough indication, and compare models on more photos (several folds)."
        )
    if n <= F.KID_SUBSET_SIZE:
        notes.append(
            f"KID's subsets are the whole set when n <= {F.KID_SUBSET_SIZE}: its std is then 0 "
            "and is no error bar."
        )
    return notes
