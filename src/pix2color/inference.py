"""Colorizer: any photo in, full-resolution colour out.

The trick every serious colorizer uses: the network predicts ab on a small copy of the photo
(the working size, like DeOldify's render factor), the ab is upsampled to the photo's size and
joined with the photo's own full-resolution L. Colour is smooth at low resolution, so the output
keeps every detail and the exact luminance of the original, at the cost of one small forward pass.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from pix2color.color import (
    denormalize_ab,
    lab_rows_to_rgb16,
    levels_to_L,
    normalize_L,
    rgb8_to_L,
)
from pix2color.data.images import ImageError, Photo, load_rgb, photo_from_image, read_photo
from pix2color.errors import UsageError
from pix2color.guidance import hint_maps, no_reference
from pix2color.hints import HintsError, Point, check_points, to_working
from pix2color.models.colour_settings import apply_colour_settings
from pix2color.models.io import load_generator
from pix2color.models.onnx_cache import fast_generator
from pix2color.propagate import color_ab, propagate
from pix2color.reference import Palette, ReferencePhotoError, palette_of, transfer
from pix2color.upsample import DEFAULT_UPSAMPLING, UPSAMPLING, BandColour

log = logging.getLogger(__name__)

DEFAULT_SIZE = 256
# a photo's colour points, given the decoded photo (colorize_files, colorize_folder); it may
# raise HintsError (points outside the photo, a bad file), which fails that photo only
PointsOf = Callable[[Photo], Sequence[Point]]


# Pixels of decoded photos colorize_folder holds at once (reader, queues, network, writer): a
# folder of 1 MP photos is limited by its queues' lengths, one of 25 MP scans by this; a photo
# bigger than this goes through alone.
PIXELS_IN_FLIGHT = 48_000_000

# Rows per band: about 256K pixels. The join's one compiled pass a pixel keeps only a band's L
# and RGB (about 2 MB) in flight, so bigger bands cost little memory and spend less time in
# Python between bands (measured: 12 MP joined in 101 ms with 256K-pixel bands, 112 ms with 64K;
# 1024x768 in 16 and 23 ms). The full-resolution path never holds a full-size float array.
BAND_PIXELS = 1 << 18


def photo_L_rows(photo: Photo, r0: int, r1: int) -> np.ndarray:
    """A photo's Lab L for rows r0..r1-1, (R, W) float32 in [0, 100]: from RGB or grey."""
    if photo.rgb is not None:
        return rgb8_to_L(photo.rgb[r0:r1])
    return levels_to_L(photo.levels[r0:r1])


def photo_L(photo: Photo) -> torch.Tensor:
    """A photo's Lab L at full resolution (H, W) float32 in [0, 100] (one full-size array)."""
    return torch.from_numpy(photo_L_rows(photo, 0, photo.size[1]))


def bands(H: int, W: int, band_pixels: int = BAND_PIXELS) -> list[tuple[int, int]]:
    """Row ranges [(r0, r1), ...] covering H rows, each about band_pixels pixels W wide."""
    step = max(1, band_pixels // max(W, 1))
    return [(r0, min(r0 + step, H)) for r0 in range(0, H, step)]


def in_order(fn: Callable, jobs: list[tuple], workers: int) -> Iterator:
    """fn(*job) for each job, on `workers` threads, yielded in order with at most 2 per worker
    waiting: numpy and torch release the GIL, so bands run on all cores in bounded memory."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(*job)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(fn, *job))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def small_L(photo: Photo, size: int, workers: int = 1) -> torch.Tensor:
    """The working-size L (1, h, w) the network sees: an antialiased downscale of the full L.

    Done as PyTorch's antialiased bilinear does it, along the width then along the height, but
    the first pass runs band by band on rows of L, so the full-size L never exists: the only
    buffer is (H, w). Equal to F.interpolate(antialias=True) on the whole L to float rounding.
    """
    W, H = photo.size
    h, w = working_shape(H, W, size)

    def across(r0: int, r1: int) -> torch.Tensor:
        L = torch.from_numpy(photo_L_rows(photo, r0, r1))  # (R, W)
        return F.interpolate(L[None, None], size=(r1 - r0, w), mode="bilinear", antialias=True)

    narrow = torch.cat(list(in_order(across, bands(H, W), workers)), dim=2)  # (1, 1, H, w)
    return F.interpolate(narrow, size=(h, w), mode="bilinear", antialias=True)[0]


def join_colour(
    photo: Photo,
    ab: torch.Tensor,
    L_small: torch.Tensor,
    *,
    upsampling: str = DEFAULT_UPSAMPLING,
    workers: int = 1,
    band_pixels: int = BAND_PIXELS,
    depth: int = 8,
) -> Image.Image | np.ndarray:
    """Working-size ab (2, h, w) + the photo's own full-resolution L -> the coloured photo.

    Band by band: each band's L comes from the photo's levels, its ab is upsampled from the
    working size (same positions as the whole image), it is turned into 8-bit RGB and pasted
    into the output. Memory: the output image (4 bytes a pixel in Pillow) plus a few bands.
    depth=16 gives a (H, W, 3 or 4) uint16 array instead (Pillow has no 16-bit RGB mode).
    """
    W, H = photo.size
    colour = BandColour(ab, L_small, (H, W), mode=upsampling)
    mode = "RGBA" if photo.alpha is not None else "RGB"
    if depth == 16:
        return _join16(photo, colour, mode, workers, band_pixels)
    if depth != 8:
        raise UsageError(f"output depth {depth}: use 8 or 16 bits")
    out = Image.new(mode, (W, H), None)  # not filled: every band is pasted over it

    def band(r0: int, r1: int) -> tuple[int, np.ndarray]:
        L = photo_L_rows(photo, r0, r1)  # (R, W)
        rgb = np.empty((r1 - r0, W, len(mode)), np.uint8)
        colour.rgb8(r0, r1, L, rgb)  # the colour upsampled and turned into sRGB in one pass
        if photo.alpha is not None:
            rgb[..., 3] = photo.alpha[r0:r1]
        return r0, rgb

    for r0, rgb in in_order(band, bands(H, W, band_pixels), workers):
        out.paste(Image.fromarray(rgb, mode), (0, r0))
    return out


def _join16(
    photo: Photo, colour: BandColour, mode: str, workers: int, band_pixels: int
) -> np.ndarray:
    """join_colour at 16 bits: (H, W, 3 or 4) uint16, each band written in place."""
    W, H = photo.size
    out = np.empty((H, W, len(mode)), np.uint16)

    def band(r0: int, r1: int) -> None:
        L = photo_L_rows(photo, r0, r1)
        a, b = colour.rows(r0, r1, L)
        lab_rows_to_rgb16(L, a, b, out[r0:r1, :, :3])
        if photo.alpha is not None:
            out[r0:r1, :, 3] = photo.alpha[r0:r1].astype(np.uint16) * 257  # 255 -> 65535

    for _ in in_order(band, bands(H, W, band_pixels), workers):
        pass
    return out


_warming = threading.Lock()
_warmed = False


def _warm_kernels() -> None:
    """Load the join's compiled loops (kernels.py) on a tiny photo: a process's first use costs
    about 0.4 s (numba starts its compiler, then reads the machine code cached on disk)."""
    BandColour(torch.zeros(2, 2, 2), torch.zeros(1, 2, 2), (2, 2)).rgb8(
        0, 2, np.zeros((2, 2), np.float32), np.empty((2, 2, 3), np.uint8)
    )
    z = np.zeros((1, 1), np.float32)
    lab_rows_to_rgb16(z, z, z, np.empty((1, 1, 3), np.uint16))


def warm_join() -> None:
    """Start loading the join's compiled loops in a thread, once per process, so that the first
    photo does not wait for them (a Colorizer calls this while its model is set up)."""
    global _warmed
    with _warming:
        if _warmed:
            return
        _warmed = True
    # not a daemon: the interpreter waits for it at exit (at most the compile, about a second)
    # rather than end the process under numba's compiler, which aborted it
    threading.Thread(target=_warm_kernels, name="pix2color-warm-join").start()


def working_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) scaled so that the long side is `size` (never upscaled beyond it), aspect kept."""
    s = size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def check_size(size: int) -> None:
    """Refuse a working size too small for the networks to see anything."""
    if size < 16:
        raise UsageError(f"working size {size} is too small; use 16 or more (256 is typical)")


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
        upsampling: str = DEFAULT_UPSAMPLING,
        backend: str = "torch",
    ) -> None:
        check_size(size)
        warm_join()  # while the model is set up
        if upsampling not in UPSAMPLING:
            raise UsageError(f"upsampling {upsampling!r}: use one of {', '.join(UPSAMPLING)}")
        apply_colour_settings(G, gain=gain, temperature=temperature)
        self.G = G.eval().to(device)  # the model (its colour setting, config and weights)
        self.size, self.device, self.name, self.info = size, torch.device(device), name, info or {}
        self.upsampling = upsampling  # how the working-size colour reaches full size (upsample.py)
        if self.device.type != "cpu" and backend == "auto":
            backend = "torch"  # onnxruntime runs on the CPU here
        # what computes the colour: G, or its checked onnxruntime twin (models/onnx_cache.py)
        self.net, self.backend = fast_generator(self.G, backend)
        self.reference: Palette | None = None  # a reference photo's colour (reference.py)

    @property
    def guided(self) -> bool:
        """Whether the model reads colour points and a reference itself (a HintUNet)."""
        return bool(getattr(self.G, "takes_guidance", False))

    def with_reference(self, reference: Image.Image | str | Path | Palette | None) -> Colorizer:
        """The same colorizer (the same network) colouring like `reference`, a colour photo (a
        PIL image, a file, or its Palette). Every model takes one: a guided-colour model
        (`guided`) reads its ab histogram as an input; any other gets the classical transfer of
        its palette (reference.py) on the automatic colour, before colour points. A reference
        that cannot be read, or has no colour, is refused with a UsageError. None: none."""
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
    ) -> Colorizer:
        """Load a shipped model by name, or a model folder / .safetensors / checkpoint by path.

        `temperature` overrides a class-head model's calibrated colour temperature (lower gives
        bolder colour); `gain` overrides a regression model's calibrated ab gain (higher gives
        bolder colour). Each is refused by the models that do not have it. `upsampling` is how
        the colour is brought to full size: "bilinear" or "guided" (follows L's edges).
        `backend`: "auto" runs the network in onnxruntime where it is installed and computes the
        same colour (checked once per model and setting, then cached), else in torch; "torch"
        or "onnx" insist (`self.backend` says which runs, and why torch if it is torch).
        """
        G, info = load_generator(name_or_path)
        return cls(
            G, size=size, device=device, name=str(name_or_path), info=info,
            temperature=temperature, gain=gain, upsampling=upsampling, backend=backend,
        )  # fmt: skip

    @torch.inference_mode()
    def predict_ab(self, L_small: torch.Tensor) -> torch.Tensor:
        """Working-size L (B, 1, h, w) in [0, 100] -> ab (B, 2, h, w) in Lab units."""
        ab = self.net(normalize_L(L_small).to(self.device)).float().cpu()
        return denormalize_ab(ab)

    @property
    def workers(self) -> int:
        """Threads for the full-resolution bands: one per CPU this process may run on (up to 8).

        Not torch's thread count: bands are independent tasks that never wait for each other,
        while torch's threads meet at a barrier after every layer (on a busy machine 2 torch
        threads made the network 30x slower than 1; the bands lose nothing to that).
        """
        return max(1, min(8, len(os.sched_getaffinity(0))))

    @torch.inference_mode()
    def predict_photos(self, photos: list[Photo]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One forward pass for several photos -> [(ab (2, h, w), L_small (1, h, w))] each."""
        return self._predict([small_L(p, self.size, self.workers) for p in photos])

    @torch.inference_mode()
    def _predict(self, smalls: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # pad to one shape so the batch runs together (edge replicated, cropped after)
        H = max(s.shape[-2] for s in smalls)
        W = max(s.shape[-1] for s in smalls)
        batch = torch.stack(
            [F.pad(s[None], (0, W - s.shape[-1], 0, H - s.shape[-2]), mode="replicate")[0]
             for s in smalls]
        )  # fmt: skip
        ab_small = self.predict_ab(batch)  # (B, 2, H, W)
        return [
            (ab[:, : s.shape[-2], : s.shape[-1]], s) for ab, s in zip(ab_small, smalls, strict=True)
        ]

    def apply_points(
        self, photo: Photo, ab: torch.Tensor, L_small: torch.Tensor, points: Sequence[Point] | None
    ) -> torch.Tensor:
        """The working-size ab (2, h, w) with the reference's palette (`with_reference`) and the
        photo's colour points; points are in the photo's pixels. Neither: ab itself.

        A guided-colour model (`guided`) colours the photo again with the points and the
        reference as its inputs; any other model's colour first takes the reference's palette
        (reference.transfer), then the points on top by the classical edge-aware propagation
        (propagate.py)."""
        if not points and self.reference is None:
            return ab
        centres = []
        if points:
            check_points(points, photo.size, f"{photo.path}: colour points")
            centres = to_working(points, photo.size, tuple(ab.shape[-2:]))
        if not self.guided:
            if self.reference is not None:
                ab = transfer(ab, L_small, self.reference)
            if not points:
                return ab
            return propagate(L_small, ab, centres, [p.color for p in points])
        maps = hint_maps(L_small, centres, color_ab([p.color for p in points or ()]))
        reference = self.reference.histogram if self.reference is not None else no_reference()
        with torch.inference_mode():
            guided = self.G(
                normalize_L(L_small)[None].to(self.device),
                maps[None].to(self.device),
                reference[None].to(self.device),
            )  # (1, 2, h, w), the torch model: the onnx twin reads L only
        return denormalize_ab(guided[0].float().cpu())

    def join(
        self, photo: Photo, ab: torch.Tensor, L_small: torch.Tensor, depth: int | str = 8
    ) -> Image.Image | np.ndarray:
        """The working-size colour joined with the photo's full-resolution L (join_colour).

        depth 8 gives a PIL image; 16 a (H, W, 3 or 4) uint16 array; "input" the photo's own
        (16 for 16-bit and float grey photos).
        """
        bits = photo.bits if depth == "input" else int(depth)
        return join_colour(
            photo, ab, L_small, upsampling=self.upsampling, workers=self.workers, depth=bits
        )

    def colorize_batch(
        self,
        photos: list[Photo],
        depth: int | str = 8,
        points: Sequence[Sequence[Point] | None] | None = None,
    ) -> list[Image.Image | np.ndarray]:
        """Colour several photos with one forward pass; each output has its photo's exact size.
        `points`: each photo's colour points (or None), in its own pixels."""
        predicted = self.predict_photos(photos)
        points = points if points is not None else [None] * len(photos)
        return [
            self.join(p, self.apply_points(p, ab, s, pts), s, depth)
            for p, (ab, s), pts in zip(photos, predicted, points, strict=True)
        ]

    def colorize_photo(
        self, photo: Photo, depth: int | str = 8, points: Sequence[Point] | None = None
    ) -> Image.Image | np.ndarray:
        """Colour one decoded photo (depth: see join), with its colour points if any."""
        return self.colorize_batch([photo], depth, [points])[0]

    def __call__(
        self,
        image: Image.Image | str | Path,
        points: Sequence[Point] | None = None,
        reference: Image.Image | str | Path | None = None,
    ) -> Image.Image:
        """Colour a PIL image or a file: same width and height, same luminance, alpha kept.
        `points`: colour points (hints.Point) in the image's pixels; `reference`: a colour
        photo to colour like (see with_reference), the points applied on top of it."""
        c = self.with_reference(reference) if reference is not None else self
        if isinstance(image, (str, Path)):
            return c.colorize_photo(read_photo(image), points=points)
        return c.colorize_photo(photo_from_pil(image), points=points)

    def colorize_files(
        self,
        paths: Iterable[Path],
        batch_size: int = 4,
        depth: int | str | Callable[[Photo], int] = 8,
        points: PointsOf | None = None,
    ) -> Iterator[tuple[Path, Image.Image | np.ndarray | None, Photo | None, str | None]]:
        """Yield (path, coloured image, photo, None) or (path, None, None, error) per file.

        A file that cannot be read, or whose colour points cannot be used, yields its error and
        the others go on. `depth` is 8, 16, "input" (see join) or a function of the photo giving
        8 or 16. `points(photo)` gives a photo's colour points (none: automatic colour).
        """
        pending: list[tuple[Photo, Sequence[Point]]] = []
        for path in paths:
            try:
                photo = read_photo(path)
                pending.append((photo, checked_points(photo, points)))
            except (ImageError, HintsError) as e:
                yield path, None, None, str(e)
                continue
            if len(pending) >= batch_size:
                yield from self._flush(pending, depth)
                pending = []
        if pending:
            yield from self._flush(pending, depth)

    def colorize_folder(
        self,
        paths: Iterable[Path],
        save: Callable[[Image.Image | np.ndarray, Photo], Path],
        *,
        batch_size: int = 4,
        depth: int | str | Callable[[Photo], int] = 8,
        ahead: int = 4,
        max_pixels: int = PIXELS_IN_FLIGHT,
        points: PointsOf | None = None,
    ) -> Iterator[tuple[Path, Path | None, str | None]]:
        """colorize_files and saving as a pipeline: yield (path, written, None) or (path, None,
        error) per file, in the order they finish.

        A reader thread decodes photos (and their working-size L) at most `ahead` photos ahead
        of the network, the network runs batches in the calling thread, a writer thread joins
        each result at full size and calls `save(image, photo)` with at most `ahead` results
        waiting: decoding, network and encoding overlap (Pillow, numpy and torch release the
        GIL) in bounded memory: about `max_pixels` pixels of decoded photos (or one photo)
        between the reader and the writer. Same results as colorize_files. A file that cannot
        be read, or whose `save` raises OSError or ImageError, yields its error and the others
        go on; any other exception stops the pipeline and is raised here. `points(photo)` gives
        a photo's colour points (a HintsError fails that photo only).
        """
        pipeline = _FolderPipeline(
            self, save, depth=depth, ahead=ahead, max_pixels=max_pixels, points=points
        )
        return pipeline.run(paths, batch_size)

    def _flush(self, pending: list[tuple[Photo, Sequence[Point]]], depth):
        # one forward pass for the batch, then one full-size output at a time
        photos = [photo for photo, _ in pending]
        for (photo, pts), (ab, s) in zip(pending, self.predict_photos(photos), strict=True):
            bits = depth(photo) if callable(depth) else depth
            yield (
                photo.path,
                self.join(photo, self.apply_points(photo, ab, s, pts), s, bits),
                photo,
                None,
            )


class _FolderPipeline:
    """The threads and queues of Colorizer.colorize_folder: read -> network -> write."""

    def __init__(
        self, colorizer: Colorizer, save, *, depth, ahead: int, max_pixels: int, points=None
    ) -> None:
        self.c, self.save, self.depth, self.max_pixels = colorizer, save, depth, max_pixels
        self.points_of = points
        self.points: dict[int, Sequence[Point]] = {}  # id(photo) -> its points, reader to writer
        self.todo: queue.Queue = queue.Queue(maxsize=max(1, ahead))  # decoded photos
        self.ready: queue.Queue = queue.Queue(maxsize=max(1, ahead))  # predicted, to save
        self.done: queue.Queue = queue.Queue()  # (path, written, error): small, drained often
        self.stop = threading.Event()
        self.failed: list[BaseException] = []
        self.read_all, self.predicting = threading.Event(), threading.Event()
        self.in_flight = 0  # pixels decoded and not yet saved
        self.room, self.starved = threading.Condition(), threading.Event()

    # -------------------------------------------------------------- bounded memory
    def take(self, n: int) -> None:
        """Wait until n more pixels fit (a lone photo always does)."""
        with self.room:
            while (
                self.in_flight and self.in_flight + n > self.max_pixels and not self.stop.is_set()
            ):
                self.starved.set()  # the network should colour what it has: the writer frees
                self.room.wait(0.1)
            self.starved.clear()
            self.in_flight += n

    def give(self, n: int) -> None:
        with self.room:
            self.in_flight -= n
            self.room.notify_all()

    def put(self, q: queue.Queue, item) -> bool:
        """A put that gives up when the pipeline stops."""
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def join_workers(self) -> int:
        """One CPU is the network's while it has work; else all of them."""
        idle = self.read_all.is_set() and self.todo.empty() and not self.predicting.is_set()
        return self.c.workers if idle else max(1, self.c.workers - 1)

    # -------------------------------------------------------------- the two threads
    def read(self, paths: Iterable[Path]) -> None:
        try:
            for path in paths:
                if self.stop.is_set():
                    return
                try:
                    photo = read_photo(path)
                    self.points[id(photo)] = checked_points(photo, self.points_of)
                except (ImageError, HintsError) as e:
                    self.done.put((Path(path), None, str(e)))
                    continue
                self.take(photo.size[0] * photo.size[1])
                if not self.put(self.todo, (photo, small_L(photo, self.c.size))):
                    return
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            self.failed.append(e)
        finally:
            self.read_all.set()
            self.put(self.todo, None)

    def write(self) -> None:
        try:
            while True:
                try:
                    item = self.ready.get(timeout=0.1)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if item is None:
                    return
                photo, ab, s = item
                ab = self.c.apply_points(photo, ab, s, self.points.pop(id(photo), None))
                bits = self.depth(photo) if callable(self.depth) else self.depth
                bits = photo.bits if bits == "input" else int(bits)
                img = join_colour(
                    photo, ab, s, upsampling=self.c.upsampling, workers=self.join_workers(),
                    depth=bits,
                )  # fmt: skip
                try:
                    self.done.put((photo.path, self.save(img, photo), None))
                except ImageError as e:
                    self.done.put((photo.path, None, str(e)))
                except OSError as e:
                    self.done.put((photo.path, None, f"{photo.path}: cannot write ({e})"))
                n = photo.size[0] * photo.size[1]
                del img, photo, item
                self.give(n)
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            self.failed.append(e)
            self.stop.set()

    def finished(self) -> Iterator[tuple[Path, Path | None, str | None]]:
        while True:
            try:
                yield self.done.get_nowait()
            except queue.Empty:
                return

    # -------------------------------------------------------------- the network, here
    def run(self, paths: Iterable[Path], batch_size: int):
        reader = threading.Thread(target=self.read, args=(paths,), name="pix2color-read",
                                  daemon=True)  # fmt: skip
        writer = threading.Thread(target=self.write, name="pix2color-write", daemon=True)
        reader.start()
        writer.start()
        try:
            yield from self.network(batch_size)
            if self.failed:
                self.stop.set()  # the writer ends too: what is left is not saved
            else:
                self.put(self.ready, None)
            while writer.is_alive():
                writer.join(timeout=0.1)
                yield from self.finished()
            yield from self.finished()
            if self.failed:
                raise self.failed[0]
        finally:
            self.stop.set()
            reader.join()
            writer.join()

    def network(self, batch_size: int):
        """Batches from the reader through the network to the writer, until the reader ends."""
        batch: list[tuple[Photo, torch.Tensor]] = []
        while not self.failed:
            try:
                item = self.todo.get(timeout=0.1)
            except queue.Empty:
                if not (batch and self.starved.is_set()):
                    yield from self.finished()
                    continue  # the reader is still decoding (or the writer failed)
                item = False  # big photos: colour a short batch to free their pixels
            if item:
                batch.append(item)
            if batch and (not item or len(batch) >= batch_size):
                photos, smalls = zip(*batch, strict=True)
                self.predicting.set()
                try:
                    predictions = self.c._predict(list(smalls))
                finally:
                    self.predicting.clear()
                for photo, predicted in zip(photos, predictions, strict=True):
                    if not self.put(self.ready, (photo, *predicted)):
                        break
                batch = []
            yield from self.finished()
            if item is None:
                break


def checked_points(photo: Photo, points_of: PointsOf | None) -> Sequence[Point]:
    """A photo's colour points, checked against its size (HintsError), () without any."""
    if points_of is None:
        return ()
    points = points_of(photo)
    check_points(points, photo.size, f"{photo.path}: colour points")
    return points


def photo_from_pil(image: Image.Image) -> Photo:
    """A PIL image (any mode) -> Photo, upright, through the same mode rules as files."""
    return photo_from_image(ImageOps.exif_transpose(image), fmt=image.format)
