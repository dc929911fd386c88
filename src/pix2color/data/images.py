"""Reading photos of any mode Pillow knows, the same way for training and for colorizing.

Every reader applies the EXIF orientation (the photo as people see it), decodes the whole file
(so a truncated file fails here, not halfway through a batch), and turns Pillow's many modes
(1, L, LA, I;16, I, F, P, PA, RGB, RGBA, CMYK, YCbCr, ...) into three things: 8-bit RGB for
training, a full-precision grey level for colorizing, and the alpha channel when there is one.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pix2color.errors import WorkFailed
from pix2color.files import replacing

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jfif", ".ppm", ".pgm",
    ".pbm", ".pnm", ".tga", ".jp2", ".j2k",
}  # fmt: skip

_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class ImageError(WorkFailed, ValueError):
    """A photo that cannot be used; the message names the file, the reason and what to do."""


@dataclass(frozen=True)
class Photo:
    """A decoded, upright photo: its grey levels as decoded, RGB if it had colour, alpha if any.

    Kept at the decoder's own depth (1 or 2 bytes a pixel for grey), never as a full-size float
    copy: a 100 MP scan is 100 MB of 8-bit grey but would be 400 MB as float32. The arrays may
    be read-only views of the decoded bytes.
    """

    path: Path
    format: str | None  # Pillow's format name of the file ("JPEG", "PNG", ...)
    levels: np.ndarray | None  # (H, W) grey: uint8, uint16, or float32 in [0, 1]; None if RGB
    rgb: np.ndarray | None  # (H, W, 3) uint8 when the file had colour channels, else None
    alpha: np.ndarray | None  # (H, W) uint8 when the file had transparency, else None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as displayed."""
        h, w = (self.levels if self.levels is not None else self.rgb).shape[:2]
        return w, h

    @property
    def gray(self) -> np.ndarray:
        """(H, W) float32 grey level in [0, 1] (Rec. 601 luma if the photo had colour).

        A new full-size float array on each call: the colorizer reads `levels` band by band.
        """
        if self.levels is None:
            return _rgb_luma(self.rgb)
        if self.levels.dtype == np.uint8:
            return self.levels.astype(np.float32) / 255.0
        if self.levels.dtype == np.uint16:
            return self.levels.astype(np.float32) / 65535.0
        return self.levels

    @property
    def bits(self) -> int:
        """8, or 16 for a grey photo decoded with more than 8 bits (16-bit or float)."""
        return 8 if self.levels is None or self.levels.dtype == np.uint8 else 16


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, upright (EXIF orientation applied)."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            # A DecompressionBombWarning (over ~89 Mpx) is fine for a local tool; above twice that
            # Pillow raises DecompressionBombError, reported below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format not in ("TIFF", "MPO"):
                raise ImageError(
                    f"{path}: animated image ({frames} frames) is not supported; "
                    "save the frame you want as a still image first"
                )
            img.load()
            # in place: no second full-size copy, and the image keeps its format for saving
            ImageOps.exif_transpose(img, in_place=True)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            f"{path}: not an image Pillow can read (unknown or corrupt format)"
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: too many pixels ({e}); downscale the image first") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied; make the file readable") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot decode the image ({e}); is the file truncated?") from None
    if img.width < 1 or img.height < 1:
        raise ImageError(f"{path}: empty image ({img.width}x{img.height})")
    return img


def _high_bit_levels(img: Image.Image) -> np.ndarray:
    """16-bit or 32-bit integer grey -> (H, W) uint16; float grey (mode F) -> float32 in [0, 1]."""
    a = np.asarray(img)
    if img.mode == "F":
        a = a.astype(np.float32)
        top = 1.0 if a.size and float(np.nanmax(a)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(a / top), 0.0, 1.0)
    if a.dtype == np.uint16:
        return a
    return np.clip(a, 0, 65535).astype(np.uint16)  # mode I (int32): 16-bit levels in practice


def read_photo(path: str | Path) -> Photo:
    """Read any photo into a `Photo`: full-precision grey, 8-bit RGB if coloured, alpha if any."""
    img = open_image(path)
    return photo_from_image(img, path=Path(path), fmt=img.format)


def photo_from_image(
    img: Image.Image, *, path: Path = Path("<image>"), fmt: str | None = None
) -> Photo:
    """A decoded PIL image of any mode -> Photo (see read_photo)."""
    mode = img.mode
    alpha = None
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if ("transparency" in img.info or mode == "PA") else "RGB")
        mode = img.mode
    if mode in ("LA", "La", "RGBA", "RGBa"):
        alpha = np.asarray(img.getchannel("A")).copy()
        img = img.convert("L" if mode.startswith("L") else "RGB")
        mode = img.mode
    if mode in _SIXTEEN_BIT or mode == "F":
        return Photo(path, fmt, _high_bit_levels(img), None, alpha)
    if mode in ("1", "L"):
        return Photo(path, fmt, np.asarray(img if mode == "L" else img.convert("L")), None, alpha)
    try:
        # an RGB image is read as it is: img.convert("RGB") would be one more full-size copy
        rgb = np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as e:
        raise ImageError(f"{path}: image mode {mode} cannot be converted to RGB ({e})") from None
    return Photo(path, fmt, None, rgb, alpha)


def _rgb_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float32 in [0, 1] (Rec. 601 luma; colour uses Lab L)."""
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def load_rgb(path: str | Path) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 RGB, upright; grey photos come back with R = G = B."""
    photo = read_photo(path)
    if photo.rgb is not None:
        return photo.rgb if photo.rgb.flags.writeable else photo.rgb.copy()
    g = np.round(photo.gray * 255.0).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def find_images(
    inputs: list[str | Path], *, exclude: Path | None = None
) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively, by extension) -> (image paths, one error line per
    input that cannot be searched or read: missing, a broken link, an unreadable folder, a link
    loop). A folder `exclude` (the output folder) is left out of the search.
    """
    found: list[Path] = []
    errors: list[str] = []
    skip = exclude.resolve() if exclude is not None else None
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(_images_under(p, skip, errors)))
        elif p.exists():
            found.append(p)  # an explicit file is tried whatever its extension
        elif p.is_symlink():
            errors.append(f"{p}: a broken link (to {os.readlink(p)}); not coloured")
        else:
            errors.append(f"{p}: no such file or folder")
    return found, errors


def _images_under(root: Path, skip: Path | None, errors: list[str]) -> list[Path]:
    """The image files below `root`, following links to folders once (a loop gets its line)."""

    def unreadable(e: OSError) -> None:
        errors.append(
            f"{e.filename}: cannot read this folder ({e.strerror}); its photos were not coloured"
        )

    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, onerror=unreadable, followlinks=True):
        here = Path(folder)
        real = here.resolve()
        if real in seen:  # reached again through a link: a loop, or a second way in
            errors.append(f"{here}: a link back to {real}, already searched; not searched again")
            subfolders.clear()
            continue
        seen.add(real)
        subfolders[:] = [d for d in subfolders if (here / d).resolve() != skip]
        for name in files:
            f = here / name
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if not f.exists():
                errors.append(f"{f}: a broken link (to {os.readlink(f)}); not coloured")
            else:
                found.append(f)
    return found


# Pillow's writable formats by the name `Image.format` reports; others are written as PNG
SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "PNG": {}, "TIFF": {}}


def save_like(img: Image.Image, photo: Photo, out: Path) -> Path:
    """Save a coloured image in its input's format (PNG stays PNG) -> the path written.

    Written to a temporary file and renamed, so an interrupted run never leaves a half photo
    that a later `--skip-existing` run would take as done. A format Pillow reads but cannot
    write is saved as PNG beside `out` (same stem).
    """
    fmt = (photo.format or Image.registered_extensions().get(out.suffix.lower(), "")).upper()
    if fmt == "MPO":
        fmt = "JPEG"
    if fmt == "GIF":
        img = img.convert("RGBA" if img.mode == "RGBA" else "RGB")
    if fmt in ("JPEG", "BMP", "PPM") and img.mode == "RGBA":
        img = img.convert("RGB")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(out, suffix=".partial") as tmp:
            img.save(tmp, format=fmt or "PNG", **SAVE_OPTIONS.get(fmt, {}))
        return out
    except (KeyError, OSError, ValueError):
        fallback = out.with_suffix(".png")
        with replacing(fallback, suffix=".partial") as tmp:
            img.save(tmp, format="PNG")
        return fallback


def output_written(out: Path) -> Path | None:
    """The file save_like wrote for `out` in an earlier run (itself or its PNG fallback)."""
    for candidate in (out, out.with_suffix(".png")):
        if candidate.is_file():
            return candidate
    return None
