"""Colorizer: any photo in, full-resolution colour out.

The trick every serious colorizer uses: the network predicts ab on a small copy of the photo
(the working size, like DeOldify's render factor), the ab is upsampled to the photo's size and
joined with the photo's own full-resolution L. Colour is smooth at low resolution, so the output
keeps every detail and the exact luminance of the original, at the cost of one small forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from pix2color.color import (
    denormalize_ab,
    gray_to_L,
    lab_to_rgb_t,
    normalize_L,
    rgb_to_lab_t,
)
from pix2color.data.images import ImageError, Photo, photo_from_image, read_photo
from pix2color.errors import UsageError
from pix2color.models.colour_settings import apply_colour_settings
from pix2color.models.io import load_generator
from pix2color.upsample import UPSAMPLING, upsample_ab

log = logging.getLogger(__name__)

DEFAULT_SIZE = 256


def photo_L(photo: Photo) -> torch.Tensor:
    """A photo's Lab L at full resolution (H, W) in [0, 100]: from RGB if coloured, else grey."""
    if photo.rgb is not None:
        rgb = torch.from_numpy(photo.rgb).permute(2, 0, 1).float() / 255.0
        return rgb_to_lab_t(rgb)[0]
    return gray_to_L(torch.from_numpy(photo.gray))


def working_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) scaled so that the long side is `size` (never upscaled beyond it), aspect kept."""
    s = size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


class Colorizer:
    """Colour photos with a generator: `Colorizer.from_pretrained("default")(image) -> image`."""

    def __init__(
        self,
        G: nn.Module,
        *,
        size: int = DEFAULT_SIZE,
        device: str | torch.device = "cpu",
        name: str = "",
        info: dict | None = None,
        temperature: float | None = None,
        gain: float | None = None,
        upsampling: str = "bilinear",
    ) -> None:
        if size < 16:
            raise UsageError(f"working size {size} is too small; use 16 or more (256 is typical)")
        if upsampling not in UPSAMPLING:
            raise UsageError(f"upsampling {upsampling!r}: use one of {', '.join(UPSAMPLING)}")
        apply_colour_settings(G, gain=gain, temperature=temperature)
        self.G = G.eval().to(device)
        self.size, self.device, self.name, self.info = size, torch.device(device), name, info or {}
        self.upsampling = upsampling  # how the working-size colour reaches full size (upsample.py)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = "default",
        *,
        size: int = DEFAULT_SIZE,
        device: str = "cpu",
        temperature: float | None = None,
        gain: float | None = None,
        upsampling: str = "bilinear",
    ) -> Colorizer:
        """Load a shipped model by name, or a model folder / .safetensors / checkpoint by path.

        `temperature` overrides a class-head model's calibrated colour temperature (lower gives
        bolder colour); `gain` overrides a regression model's calibrated ab gain (higher gives
        bolder colour). Each is refused by the models that do not have it. `upsampling` is how
        the colour is brought to full size: "bilinear" or "guided" (follows L's edges).
        """
        G, info = load_generator(name_or_path)
        return cls(
            G, size=size, device=device, name=str(name_or_path), info=info,
            temperature=temperature, gain=gain, upsampling=upsampling,
        )  # fmt: skip

    @torch.inference_mode()
    def predict_ab(self, L_small: torch.Tensor) -> torch.Tensor:
        """Working-size L (B, 1, h, w) in [0, 100] -> ab (B, 2, h, w) in Lab units."""
        ab = self.G(normalize_L(L_small).to(self.device)).float().cpu()
        return denormalize_ab(ab)

    def _small_L(self, L: torch.Tensor) -> torch.Tensor:
        h, w = L.shape
        sh, sw = working_shape(h, w, self.size)
        # antialiased downscale: the network should see a clean small photo, not aliasing
        return F.interpolate(L[None, None], size=(sh, sw), mode="bilinear", antialias=True)[0]

    @torch.inference_mode()
    def colorize_batch(self, photos: list[Photo]) -> list[Image.Image]:
        """Colour several photos with one forward pass; each output has its photo's exact size."""
        Ls = [photo_L(p) for p in photos]
        smalls = [self._small_L(L) for L in Ls]  # each (1, h, w)
        # pad to one shape so the batch runs together (edge replicated, cropped after)
        H = max(s.shape[-2] for s in smalls)
        W = max(s.shape[-1] for s in smalls)
        batch = torch.stack(
            [F.pad(s[None], (0, W - s.shape[-1], 0, H - s.shape[-2]), mode="replicate")[0]
             for s in smalls]
        )  # fmt: skip
        ab_small = self.predict_ab(batch)  # (B, 2, H, W)
        out = []
        for photo, L, s, ab in zip(photos, Ls, smalls, ab_small, strict=True):
            ab = ab[:, : s.shape[-2], : s.shape[-1]]
            ab_full = upsample_ab(ab, s, L, mode=self.upsampling)
            rgb = lab_to_rgb_t(torch.cat([L[None], ab_full], dim=0))  # (3, H, W) in [0, 1]
            arr = (rgb.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
            img = Image.fromarray(arr, "RGB")
            if photo.alpha is not None:
                img.putalpha(Image.fromarray(photo.alpha, "L"))
            out.append(img)
        return out

    def colorize_photo(self, photo: Photo) -> Image.Image:
        """Colour one decoded photo."""
        return self.colorize_batch([photo])[0]

    def __call__(self, image: Image.Image | str | Path) -> Image.Image:
        """Colour a PIL image or a file: same width and height, same luminance, alpha kept."""
        if isinstance(image, (str, Path)):
            return self.colorize_photo(read_photo(image))
        return self.colorize_photo(photo_from_pil(image))

    def colorize_files(
        self, paths: Iterable[Path], batch_size: int = 4
    ) -> Iterator[tuple[Path, Image.Image | None, Photo | None, str | None]]:
        """Yield (path, coloured image, photo, None) or (path, None, None, error) per file.

        A file that cannot be read yields its error and the others go on.
        """
        pending: list[Photo] = []
        for path in paths:
            try:
                pending.append(read_photo(path))
            except ImageError as e:
                yield path, None, None, str(e)
                continue
            if len(pending) >= batch_size:
                yield from self._flush(pending)
                pending = []
        if pending:
            yield from self._flush(pending)

    def _flush(self, photos: list[Photo]):
        for photo, img in zip(photos, self.colorize_batch(photos), strict=True):
            yield photo.path, img, photo, None


def photo_from_pil(image: Image.Image) -> Photo:
    """A PIL image (any mode) -> Photo, upright, through the same mode rules as files."""
    return photo_from_image(ImageOps.exif_transpose(image), fmt=image.format)
