"""The spine: one decoded photo and its guidance in, the full-resolution colour out.

Every way of colouring (the CLI, the folder pipeline, the web service, evaluate, the Python
API) goes through these steps, and only through them:

1. **Working-size L** (`join.small_L`): the photo's own Lab L, downscaled with antialiasing so
   that its long side is the working size.
2. **Network** (`predict`): the automatic colour, ab at the working size, for several photos in
   one forward pass (padded to one shape, cropped after), in onnxruntime or torch.
3. **Guidance** (`guide`): what a person adds. A reference photo's palette moves the automatic
   colour towards the reference's colours per lightness (guide/reference.py); colour points are
   then spread over the objects they sit on (guide/propagate.py). A guided-colour network
   (HintUNet) instead colours the photo again with the points and the reference as inputs.
4. **Join** (`finish`): the ab upsampled to full size (bilinear, or guided by the photo's L) and
   joined with the photo's own full-resolution L, band by band, at the chosen depth.

`colorize` runs all four. Inputs are checked once, where they enter: colour points against
their photo in `check_guidance` (the pipeline's reader, the web's request, the Python API),
the output depth in `output_bits`. Steps 1-2 need no torch where onnxruntime runs the network;
torch is loaded only for guidance and for torch-run networks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from pix2color.color.constants import AB_SCALE, L_SCALE, L_SHIFT
from pix2color.guide.points import Point, check_points, to_working
from pix2color.inference.join import join_color
from pix2color.photo import Photo

if TYPE_CHECKING:
    from pix2color.guide.reference import Palette


class Colorizer(Protocol):
    """What the spine reads of a colorizer.Colorizer (a protocol, so that the spine does not
    import the class that calls it)."""

    size: int  # the working size
    upsampling: str  # "bilinear" or "guided"
    device: str
    workers: int  # threads for the full-resolution bands
    guided: bool  # a guided-colour network (reads points and a reference itself)
    G: Any  # the torch model (loaded when asked for)

    def network(self, L: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Guidance:
    """What a person gives beside the photo: colour points (in the photo's pixels) and a
    reference photo's palette. `source` names the points in error messages (a hints file)."""

    points: tuple[Point, ...] = ()
    reference: Palette | None = None
    source: str = "points"

    def __bool__(self) -> bool:
        return bool(self.points) or self.reference is not None


NO_GUIDANCE = Guidance()

# the output depth: 8, 16, "input" (the photo's own), or a function of the photo giving one
Depth = int | str | Callable[[Photo], int | str]


@dataclass(frozen=True)
class Prediction:
    """The network's working-size colour of one photo: ab (2, h, w) in Lab units and the L it
    saw (1, h, w) in [0, 100], both float32."""

    ab: np.ndarray
    L_small: np.ndarray


def check_guidance(photo: Photo, guidance: Guidance) -> Guidance:
    """The one check of a photo's guidance: points outside the photo raise a PointsError that
    starts with `guidance.source`. Returns the guidance."""
    if guidance.points:
        check_points(guidance.points, photo.size, guidance.source)
    return guidance


def output_bits(photo: Photo, depth: Depth) -> int:
    """The bits per channel of a photo's result: 8, 16, or the photo's own for "input"."""
    if callable(depth):
        depth = depth(photo)
    return photo.bits if depth == "input" else int(depth)


def predict(colorizer: Colorizer, smalls: Sequence[np.ndarray]) -> list[Prediction]:
    """Steps 2: working-size L (1, h, w) each -> their automatic colour, one forward pass."""
    H = max(s.shape[-2] for s in smalls)
    W = max(s.shape[-1] for s in smalls)
    # pad to one shape so the batch runs together (edge replicated, cropped after)
    batch = np.stack(
        [np.pad(s, ((0, 0), (0, H - s.shape[-2]), (0, W - s.shape[-1])), mode="edge")
         for s in smalls]
    )  # fmt: skip
    ab = colorizer.network(batch / np.float32(L_SCALE) - np.float32(L_SHIFT)) * np.float32(AB_SCALE)
    return [
        Prediction(np.ascontiguousarray(a[:, : s.shape[-2], : s.shape[-1]]), s)
        for a, s in zip(ab, smalls, strict=True)
    ]


def guide(
    colorizer: Colorizer, photo: Photo, prediction: Prediction, guidance: Guidance
) -> np.ndarray:
    """Step 3: the working-size ab (2, h, w) with the guidance applied (checked already)."""
    if not guidance:
        return prediction.ab
    import torch

    ab, L_small = torch.from_numpy(prediction.ab), torch.from_numpy(prediction.L_small)
    points = guidance.points
    centres = to_working(points, photo.size, tuple(ab.shape[-2:])) if points else []
    if colorizer.guided:
        return _guided_network(colorizer, L_small, centres, guidance)
    if guidance.reference is not None:
        from pix2color.guide.reference import transfer

        ab = transfer(ab, L_small, guidance.reference)
    if points:
        from pix2color.guide.propagate import propagate

        ab = propagate(L_small, ab, centres, [p.color for p in points])
    return ab.float().numpy()


def _guided_network(colorizer: Colorizer, L_small: Any, centres: list, guidance: Guidance):
    """A HintUNet colours the photo again, reading the points' maps and the reference."""
    import torch

    from pix2color.color.lab import denormalize_ab, normalize_L
    from pix2color.guide.maps import no_reference, point_maps
    from pix2color.guide.propagate import color_ab

    maps = point_maps(L_small, centres, color_ab([p.color for p in guidance.points]))
    ref = guidance.reference.histogram if guidance.reference is not None else no_reference()
    G, device = colorizer.G, colorizer.device
    with torch.inference_mode():
        out = G(normalize_L(L_small)[None].to(device), maps[None].to(device), ref[None].to(device))
    return denormalize_ab(out[0].float().cpu()).numpy()  # the torch model: the twin reads L only


def finish(
    colorizer: Colorizer,
    photo: Photo,
    ab: np.ndarray,
    L_small: np.ndarray,
    bits: int,
    workers: int | None = None,
) -> Image.Image | np.ndarray:
    """Step 4: working-size ab joined with the photo's full-resolution L at `bits` (8: a PIL
    image; 16: a (H, W, 3 or 4) uint16 array)."""
    return join_color(
        photo, ab, L_small, upsampling=colorizer.upsampling,
        workers=colorizer.workers if workers is None else workers, depth=bits,
    )  # fmt: skip


def colorize(
    colorizer: Colorizer,
    photos: Sequence[Photo],
    guidances: Sequence[Guidance] | None = None,
    depth: Depth = 8,
) -> list[Image.Image | np.ndarray]:
    """Steps 1-4 for photos whose guidance is checked: one forward pass, then each photo's
    guidance and join in turn (one full-size output at a time)."""
    from pix2color.inference.join import small_L

    guidances = guidances or [NO_GUIDANCE] * len(photos)
    smalls = [small_L(p, colorizer.size, colorizer.workers) for p in photos]
    return [
        finish(colorizer, p, guide(colorizer, p, pred, g), pred.L_small, output_bits(p, depth))
        for p, pred, g in zip(photos, predict(colorizer, smalls), guidances, strict=True)
    ]
