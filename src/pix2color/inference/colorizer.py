"""Colorizer: a loaded model with its settings, the object every colouring goes through.

`Colorizer.from_pretrained("default")(image) -> image`. It holds the network (onnxruntime's
checked twin or the torch module), the working size, the colour setting, how colour is brought
to full size, and optionally a reference photo's palette; the colouring itself is the spine's
(spine.py), which its methods call.

Where the model's onnxruntime twin is cached already, loading needs no torch at all: the twin
is found by the model files' hash (models/onnx_cache.py) and the torch module is loaded only if
something asks for it (`G`: a guided network's colour points, training, calibration).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from pix2color.color.upsample import DEFAULT_UPSAMPLING, UPSAMPLING
from pix2color.errors import UsageError
from pix2color.guide.points import Point
from pix2color.inference import spine
from pix2color.inference.join import DEFAULT_SIZE, check_size
from pix2color.inference.spine import Depth, Guidance
from pix2color.models.onnx_generator import OnnxGenerator
from pix2color.photo import ImageError, Photo, load_rgb, photo_from_image, read_photo

if TYPE_CHECKING:
    from torch import nn

    from pix2color.guide.reference import Palette

log = logging.getLogger(__name__)

# a photo's colour points, given the decoded photo (colorize_files, colorize_folder); it may
# raise PointsError (a bad file), which fails that photo only
PointsOf = Callable[[Photo], Sequence[Point]]


class Colorizer:
    """Colour photos with a generator: `Colorizer.from_pretrained("default")(image) -> image`."""

    def __init__(
        self,
        G: nn.Module | None,
        *,
        size: int = DEFAULT_SIZE,
        device: str = "cpu",
        name: str = "",
        info: dict | None = None,
        temperature: float | None = None,
        gain: float | None = None,
        upsampling: str = DEFAULT_UPSAMPLING,
        backend: str = "torch",
        twin: tuple[OnnxGenerator, dict[str, Any], Callable[[], nn.Module]] | None = None,
    ) -> None:
        """G: the torch model; or None with `twin` = (its cached onnxruntime twin, the twin's
        index entry, a function that loads G when something asks for it)."""
        check_size(size)
        if upsampling not in UPSAMPLING:
            raise UsageError(f"upsampling {upsampling!r}: use one of {', '.join(UPSAMPLING)}")
        self.size, self.name, self.info = size, name, info or {}
        self.device = str(device)
        self.upsampling = upsampling  # how the working-size colour reaches full size (upsample.py)
        self.reference: Palette | None = None  # a reference photo's colour (with_reference)
        self._settings = {"gain": gain, "temperature": temperature}
        if twin is not None:
            self.net, entry, self._load_G = twin
            self._G, self.backend = None, "onnx"
            self._guided, self.info = bool(entry["guided"]), entry["info"]
            return
        from pix2color.models.color_settings import apply_color_settings
        from pix2color.models.onnx_cache import fast_generator

        apply_color_settings(G, gain=gain, temperature=temperature)
        self._G = G.eval().to(device)  # the model (its colour setting, config and weights)
        self._guided = bool(getattr(G, "takes_guidance", False))
        if self.device.split(":")[0] != "cpu" and backend == "auto":
            backend = "torch"  # onnxruntime runs on the CPU here
        # what computes the colour: G, or its checked onnxruntime twin (models/onnx_cache.py)
        self.net, self.backend = fast_generator(self._G, backend)

    @property
    def G(self) -> nn.Module:
        """The torch model, with its colour setting (loaded now if only its twin was)."""
        if self._G is None:
            from pix2color.models.color_settings import apply_color_settings

            G = self._load_G()
            apply_color_settings(G, **self._settings)
            self._G = G.eval().to(self.device)
        return self._G

    @property
    def guided(self) -> bool:
        """Whether the model reads colour points and a reference itself (a HintUNet)."""
        return self._guided

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = "default",
        *,
        size: int = DEFAULT_SIZE,
        device: str = "cpu",
        temperature: float | None = None,
        gain: float | None = None,
        upsampling: str = DEFAULT_UPSAMPLING,
        backend: str = "auto",
        threads: int | None = None,
    ) -> Colorizer:
        """Load a shipped model by name, or a model folder / .safetensors / checkpoint by path.

        `temperature` overrides a class-head model's calibrated colour temperature (lower gives
        bolder colour); `gain` overrides a regression model's calibrated ab gain (higher gives
        bolder colour). Each is refused by the models that do not have it. `upsampling` is how
        the colour is brought to full size: "bilinear" or "guided" (follows L's edges).
        `backend`: "auto" runs the network in onnxruntime where it is installed and computes the
        same colour (checked once per model and setting, then cached), else in torch; "torch"
        or "onnx" insist (`self.backend` says which runs, and why torch if it is torch).
        `threads`: onnxruntime's threads (default: torch's count where torch is loaded).
        """
        from pix2color.models import onnx_cache
        from pix2color.models.io import load_generator, resolve

        onnx_cache.check_backend(backend)
        path, settings = resolve(name_or_path), {"gain": gain, "temperature": temperature}
        common = dict(size=size, device=device, name=str(name_or_path), upsampling=upsampling,
                      temperature=temperature, gain=gain)  # fmt: skip
        if backend != "torch" and str(device) == "cpu":
            cached = onnx_cache.cached_twin(path, settings, threads=threads)
            if cached is not None:
                from pix2color.models.color_settings import check_color_settings

                check_color_settings(cached[1]["knob"], gain=gain, temperature=temperature)
                twin = (*cached, lambda: load_generator(path)[0])
                return cls(None, info=cached[1]["info"], twin=twin, **common)
        G, info = load_generator(path)
        c = cls(G, info=info, backend=backend, **common)
        if isinstance(c.net, OnnxGenerator) and not isinstance(G, OnnxGenerator):
            entry = {"info": info, "guided": c.guided, "knob": getattr(G, "color_knob", None)}
            onnx_cache.remember_twin(path, settings, c.net, entry)
        return c

    def with_reference(self, reference: Image.Image | str | Path | Palette | None) -> Colorizer:
        """The same colorizer (the same network) colouring like `reference`, a colour photo (a
        PIL image, a file, or its Palette). Every model takes one: a guided-colour model
        (`guided`) reads its ab histogram as an input; any other gets the classical transfer of
        its palette (reference.py) on the automatic colour, before colour points. A reference
        that cannot be read, or has no colour, is refused with a UsageError. None: none."""
        from pix2color.guide.reference import Palette, ReferencePhotoError, palette_of

        other = copy.copy(self)
        if reference is None or isinstance(reference, Palette):
            other.reference = reference
            return other
        if isinstance(reference, Image.Image):
            rgb, name = np.asarray(reference.convert("RGB")), "reference"
        else:
            name = str(reference)
            try:
                rgb = load_rgb(reference)
            except ImageError as e:
                raise ReferencePhotoError(f"reference photo: {e}; give a colour photo") from None
        other.reference = palette_of(rgb, name=name)
        return other

    def at_size(self, size: int) -> Colorizer:
        """The same colorizer (the same network, not a copy) at another working size."""
        check_size(size)
        other = copy.copy(self)
        other.size = size
        return other

    def guidance(self, points: Sequence[Point] | None = None, source: str = "points") -> Guidance:
        """Guidance of these colour points (or none) with this colorizer's reference."""
        return Guidance(tuple(points or ()), self.reference, source)

    def network(self, L: np.ndarray) -> np.ndarray:
        """Network-scale L (B, 1, h, w) float32 in [-1, 1] -> ab (B, 2, h, w) in about [-1, 1]."""
        if isinstance(self.net, OnnxGenerator):
            return self.net.run(L)
        import torch

        with torch.inference_mode():
            ab = self.net(torch.from_numpy(np.ascontiguousarray(L)).to(self.device))
            return ab.float().cpu().numpy()

    @property
    def workers(self) -> int:
        """Threads for the full-resolution bands: one per CPU this process may run on (up to 8).

        Not torch's thread count: bands are independent tasks that never wait for each other,
        while torch's threads meet at a barrier after every layer (on a busy machine 2 torch
        threads made the network 30x slower than 1; the bands lose nothing to that).
        """
        return max(1, min(8, len(os.sched_getaffinity(0))))

    def predict_photos(self, photos: list[Photo]) -> list[spine.Prediction]:
        """Steps 1-2 of the spine for several photos: one forward pass -> a Prediction each."""
        from pix2color.inference.join import small_L

        return spine.predict(self, [small_L(p, self.size, self.workers) for p in photos])

    def colorize_batch(
        self,
        photos: list[Photo],
        depth: Depth = 8,
        points: Sequence[Sequence[Point] | None] | None = None,
    ) -> list[Image.Image | np.ndarray]:
        """Colour several photos with one forward pass; each output has its photo's exact size.
        `points`: each photo's colour points (or None), in its own pixels (checked here)."""
        points = points if points is not None else [None] * len(photos)
        guidances = [
            spine.check_guidance(p, self.guidance(pts, f"{p.path}: colour points"))
            for p, pts in zip(photos, points, strict=True)
        ]
        return spine.colorize(self, photos, guidances, depth)

    def colorize_photo(
        self, photo: Photo, depth: Depth = 8, points: Sequence[Point] | None = None
    ) -> Image.Image | np.ndarray:
        """Colour one decoded photo (depth: 8, 16 or "input"), with its colour points if any."""
        return self.colorize_batch([photo], depth, [points])[0]

    def __call__(
        self,
        image: Image.Image | str | Path,
        points: Sequence[Point] | None = None,
        reference: Image.Image | str | Path | None = None,
    ) -> Image.Image:
        """Colour a PIL image or a file: same width and height, same luminance, alpha kept.
        `points`: colour points (guide.points.Point) in the image's pixels; `reference`: a
        colour photo to colour like (see with_reference), the points applied on top of it."""
        c = self.with_reference(reference) if reference is not None else self
        if isinstance(image, (str, Path)):
            return c.colorize_photo(read_photo(image), points=points)
        return c.colorize_photo(photo_from_pil(image), points=points)

    def colorize_files(
        self,
        paths: Iterable[Path],
        batch_size: int = 4,
        depth: Depth = 8,
        points: PointsOf | None = None,
    ) -> Iterator[tuple[Path, Image.Image | np.ndarray | None, Photo | None, str | None]]:
        """Yield (path, coloured image, photo, None) or (path, None, None, error) per file, in
        order, one batch at a time (colorize_folder overlaps reading, network and writing).

        A file that cannot be read, or whose colour points cannot be used, yields its error and
        the others go on. `depth` is 8, 16, "input" or a function of the photo giving one.
        `points(photo)` gives a photo's colour points (none: automatic colour).
        """
        from pix2color.guide.points import PointsError

        pending: list[tuple[Photo, Guidance]] = []
        for path in paths:
            try:
                photo = read_photo(path)
                pending.append((photo, self._guidance_of(points)(photo)))
            except (ImageError, PointsError) as e:
                yield path, None, None, str(e)
                continue
            if len(pending) >= batch_size:
                yield from self._color_pending(pending, depth)
                pending = []
        if pending:
            yield from self._color_pending(pending, depth)

    def _color_pending(self, pending: list[tuple[Photo, Guidance]], depth: Depth):
        photos, guidances = zip(*pending, strict=True)
        images = spine.colorize(self, photos, guidances, depth)
        for photo, image in zip(photos, images, strict=True):
            yield photo.path, image, photo, None

    def _guidance_of(
        self, points: PointsOf | None, guidance: Callable[[Photo], Guidance] | None = None
    ) -> Callable[[Photo], Guidance]:
        """A function of a photo giving its checked guidance, from `points` (a function of the
        photo giving points) or `guidance` (one giving the whole Guidance)."""

        def of(photo: Photo) -> Guidance:
            if guidance is not None:
                g = guidance(photo)
            else:
                pts = points(photo) if points is not None else ()
                g = self.guidance(pts, f"{photo.path}: colour points")
            return spine.check_guidance(photo, g)

        return of

    def colorize_folder(
        self,
        paths: Iterable[Path],
        save: Callable[[Image.Image | np.ndarray, Photo], Path],
        *,
        batch_size: int = 4,
        depth: Depth = 8,
        ahead: int = 4,
        max_pixels: int | None = None,
        points: PointsOf | None = None,
        guidance: Callable[[Photo], Guidance] | None = None,
    ) -> Iterator[tuple[Path, Path | None, str | None]]:
        """colorize_files and saving as a pipeline (pipeline.py): yield (path, written, None) or
        (path, None, error) per file, in the order they finish. Same results as colorize_files.
        A file that cannot be read, whose guidance cannot be used, or whose `save` raises
        OSError or ImageError yields its error and the others go on; any other exception stops
        the pipeline and is raised here. `points(photo)` gives a photo's colour points, or
        `guidance(photo)` its whole Guidance (points, reference, the points' source)."""
        from pix2color.inference.pipeline import PIXELS_IN_FLIGHT, FolderPipeline

        pipeline = FolderPipeline(
            self, save, depth=depth, ahead=ahead, guidance=self._guidance_of(points, guidance),
            max_pixels=PIXELS_IN_FLIGHT if max_pixels is None else max_pixels,
        )  # fmt: skip
        return pipeline.run(paths, batch_size)


def photo_from_pil(image: Image.Image) -> Photo:
    """A PIL image (any mode) -> Photo, upright, through the same mode rules as files."""
    return photo_from_image(ImageOps.exif_transpose(image), fmt=image.format)
