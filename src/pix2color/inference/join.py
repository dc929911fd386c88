"""The full-resolution ends of the spine: the working-size L going in, the join coming out.

The trick every serious colorizer uses: the network predicts ab on a small copy of the photo
(the working size, like DeOldify's render factor); the ab is upsampled to the photo's size and
joined with the photo's own full-resolution L. Colour is smooth at low resolution, so the output
keeps every detail and the exact luminance of the original, at the cost of one small forward
pass. Both ends work band by band on rows of the photo, so no full-size float array is ever
held, and in numpy (color/rows.py, color/resample.py): no torch.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from pix2color.color.resample import downscale_last
from pix2color.color.rows import lab_rows_to_rgb16, levels_to_L, rgb8_to_L
from pix2color.color.upsample import DEFAULT_UPSAMPLING, BandColor
from pix2color.errors import UsageError
from pix2color.photo import Photo

DEFAULT_SIZE = 256

# Rows per band: about 256K pixels. The join's one pass a pixel keeps only a band's L and RGB
# (about 2 MB) in flight, so bigger bands cost little memory and spend less time in Python
# between bands (measured: 12 MP joined in 101 ms with 256K-pixel bands, 112 ms with 64K;
# 1024x768 in 16 and 23 ms). The full-resolution path never holds a full-size float array.
BAND_PIXELS = 1 << 18


def photo_L_rows(photo: Photo, r0: int, r1: int) -> np.ndarray:
    """A photo's Lab L for rows r0..r1-1, (R, W) float32 in [0, 100]: from RGB or grey."""
    if photo.rgb is not None:
        return rgb8_to_L(photo.rgb[r0:r1])
    return levels_to_L(photo.levels[r0:r1])


def photo_L(photo: Photo) -> np.ndarray:
    """A photo's Lab L at full resolution (H, W) float32 in [0, 100] (one full-size array)."""
    return photo_L_rows(photo, 0, photo.size[1])


def bands(H: int, W: int, band_pixels: int = BAND_PIXELS) -> list[tuple[int, int]]:
    """Row ranges [(r0, r1), ...] covering H rows, each about band_pixels pixels W wide."""
    step = max(1, band_pixels // max(W, 1))
    return [(r0, min(r0 + step, H)) for r0 in range(0, H, step)]


def in_order(fn: Callable, jobs: list[tuple], workers: int) -> Iterator:
    """fn(*job) for each job, on `workers` threads, yielded in order with at most 2 per worker
    waiting: numpy releases the GIL, so bands run on all cores in bounded memory."""
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


def working_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) scaled so that the long side is `size`, aspect kept."""
    s = size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def check_size(size: int) -> None:
    """Refuse a working size too small for the networks to see anything."""
    if size < 16:
        raise UsageError(f"working size {size} is too small; use 16 or more (256 is typical)")


def small_L(photo: Photo, size: int, workers: int = 1) -> np.ndarray:
    """The working-size L (1, h, w) float32 the network sees: an antialiased downscale of the
    full L, along the width band by band (so the full-size L never exists: the only buffer is
    (H, w)), then along the height; PyTorch's F.interpolate(antialias=True) to the bit."""
    W, H = photo.size
    h, w = working_shape(H, W, size)

    def across(r0: int, r1: int) -> np.ndarray:
        return downscale_last(photo_L_rows(photo, r0, r1), w)  # (R, w)

    narrow = np.concatenate(list(in_order(across, bands(H, W), workers)), axis=0)  # (H, w)
    return np.ascontiguousarray(downscale_last(np.ascontiguousarray(narrow.T), h).T)[None]


def join_color(
    photo: Photo,
    ab: np.ndarray,
    L_small: np.ndarray,
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
    color = BandColor(ab, L_small, (H, W), mode=upsampling)
    mode = "RGBA" if photo.alpha is not None else "RGB"
    if depth == 16:
        return _join16(photo, color, mode, workers, band_pixels)
    if depth != 8:
        raise UsageError(f"output depth {depth}: use 8 or 16 bits")
    out = Image.new(mode, (W, H), None)  # not filled: every band is pasted over it

    def band(r0: int, r1: int) -> tuple[int, np.ndarray]:
        L = photo_L_rows(photo, r0, r1)  # (R, W)
        rgb = np.empty((r1 - r0, W, len(mode)), np.uint8)
        color.rgb8(r0, r1, L, rgb)  # the colour upsampled and turned into sRGB in one pass
        if photo.alpha is not None:
            rgb[..., 3] = photo.alpha[r0:r1]
        return r0, rgb

    for r0, rgb in in_order(band, bands(H, W, band_pixels), workers):
        out.paste(Image.fromarray(rgb, mode), (0, r0))
    return out


def _join16(
    photo: Photo, color: BandColor, mode: str, workers: int, band_pixels: int
) -> np.ndarray:
    """join_colour at 16 bits: (H, W, 3 or 4) uint16, each band written in place."""
    W, H = photo.size
    out = np.empty((H, W, len(mode)), np.uint16)

    def band(r0: int, r1: int) -> None:
        L = photo_L_rows(photo, r0, r1)
        a, b = color.rows(r0, r1, L)
        lab_rows_to_rgb16(L, a, b, out[r0:r1, :, :3])
        if photo.alpha is not None:
            out[r0:r1, :, 3] = photo.alpha[r0:r1].astype(np.uint16) * 257  # 255 -> 65535

    for _ in in_order(band, bands(H, W, band_pixels), workers):
        pass
    return out


_warming = threading.Lock()
_warmed = False


def _warm_kernels() -> None:
    """Load the compiled join (kernels.py) on a tiny photo: a process's first use costs about a
    second (numba starts, then reads the machine code cached on disk)."""
    from pix2color.color import kernels
    from pix2color.color.rows import rgb8_tables

    z = np.zeros((2, 2), np.float32)
    t = np.zeros(2, np.intp)
    kernels.upsample_lab_to_rgb8(
        z, np.zeros((2, 2, 2), np.float32), t, t, z[0], z[0], t, t, z[0], z[0], False,
        *rgb8_tables(), np.empty((2, 2, 3), np.uint8),
    )  # fmt: skip
    lab_rows_to_rgb16(z, z, z, np.empty((2, 2, 3), np.uint16))


def warm_join() -> None:
    """Start loading the compiled join in a thread, once per process: for a long-lived process
    (the web service) whose big photos should not wait for it. A one-photo command does not
    call it: photos under color.rows.COMPILE_FROM_PIXELS are joined in numpy."""
    global _warmed
    with _warming:
        if _warmed:
            return
        _warmed = True
    # not a daemon: the interpreter waits for it at exit (at most the compile, about a second)
    # rather than end the process under numba's compiler, which aborted it
    threading.Thread(target=_warm_kernels, name="pix2color-warm-join").start()
