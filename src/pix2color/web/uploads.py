"""An uploaded photo: saved under a random name, checked in two steps, decoded, shown.

Its header is checked first (cheap, before any inference slot is taken): the format must be one
of the photo formats below (so SVG, HTML, PDF or PostScript are never handed to a decoder), the
pixel count under the limit (a decompression bomb is refused before it is decoded), and it must
not be animated. Then, inside an inference slot, the whole file is decoded by
`pix2color.data.images`, the same reader the CLI uses (every mode, EXIF, truncation).
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from pix2color.photo import ImageError, Photo, read_photo
from pix2color.web.errors import WebError

# Pillow format names this service opens; everything else is refused before decoding
Image.init()  # register every plugin now: Image.open(formats=...) only knows registered ones
PHOTO_FORMATS = tuple(
    f for f in ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM", "TGA") if f in Image.OPEN
)
FORMAT_NAMES = "JPEG, PNG, WebP, TIFF, BMP, GIF, PNM or TGA"


def new_id() -> str:
    """A random, unguessable id (it is the only key to a person's photo)."""
    return secrets.token_urlsafe(12)


def client_filename(raw: str | None) -> str:
    """The name a person's file had, made safe to show and to reuse in a download name."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:8]) if dot and len(ext) <= 8 else name[:120]
    return name or "photo"


def save_upload(folder: Path, file: FileStorage | None) -> tuple[Path, str]:
    """Keep a request's photo under a random name in `folder` -> (its path, its safe name)."""
    if file is None or (not file.filename and not file.content_length):
        raise WebError(400, "no photo in the request: send it in the form field 'image'")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{new_id()}.upload"
    file.save(path)
    return path, client_filename(file.filename)


def _sniff(head: bytes) -> str | None:
    """A name for common non-photo files, so the refusal can say what the file really is."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text[:1024] or (text.startswith(b"<?xml") and b"svg" in text[:1024]):
        return "an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "an HTML page"
    if text.startswith(b"%pdf"):
        return "a PDF document"
    if text.startswith(b"%!ps"):
        return "a PostScript file"
    if text.startswith(b"<"):
        return "an XML or HTML file"
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head[:512]):
        return "a text file"
    return None


def pixel_limit(max_pixels: int) -> str:
    """The pixel limit as the refusals and the page say it, exactly: rounding 25,005,000 pixels
    to "25.0 megapixels" would read as within a limit of 25."""
    return f"{max_pixels:,} pixels ({max_pixels / 1e6:g} megapixels)"


def check_header(path: Path, filename: str, max_pixels: int) -> tuple[str, int, int]:
    """Look at an upload without decoding it -> (format, width, height), or raise WebError."""
    with open(path, "rb") as f:
        head = f.read(2048)
    if not head:
        raise WebError(400, f"{filename}: the file is empty; choose the photo again")
    try:
        with warnings.catch_warnings():
            # our own pixel limit (below) is lower than Pillow's warning threshold
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=PHOTO_FORMATS) as img:
                fmt, (w, h) = img.format, img.size
                frames = getattr(img, "n_frames", 1)
    except UnidentifiedImageError:
        what = _sniff(head)
        why = f"this is {what}, not a photo" if what else "not a photo format this service reads"
        raise WebError(415, f"{filename}: {why}; send a {FORMAT_NAMES} file") from None
    except Image.DecompressionBombError:
        raise WebError(
            413, f"{filename}: far too many pixels to be a photo; downscale it first"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise WebError(
            400, f"{filename}: the image header cannot be read ({e}); is the file damaged?"
        ) from None
    if w * h > max_pixels:
        raise WebError(
            413,
            f"{filename}: {w}x{h} is {w * h:,} pixels, more than the {pixel_limit(max_pixels)} "
            "this server colours in one photo; downscale it first",
        )
    if frames > 1 and fmt not in ("TIFF", "MPO"):
        raise WebError(
            415,
            f"{filename}: animated image ({frames} frames) is not supported; "
            "save the frame you want as a still photo first",
        )
    return fmt, w, h


def decode(path: Path, filename: str) -> Photo:
    """Decode a checked upload fully (the CLI's reader); errors name the person's file."""
    try:
        return read_photo(path)
    except ImageError as e:
        raise WebError(400, str(e).replace(str(path), filename)) from None


def photo_digest(photo: Photo) -> str:
    """The photo's content, as the models see it (its size and 8-bit grey levels), as a
    digest: the same photo sent twice, in any file format, has the same one."""
    levels = photo.levels
    if levels is None or levels.dtype != np.uint8:
        levels = np.round(photo.gray * 255.0).astype(np.uint8)
    h = hashlib.sha256(b"pix2color-photo:%dx%d:" % photo.size)
    h.update(np.ascontiguousarray(levels).data)
    return h.hexdigest()


def view_image(photo: Photo) -> Image.Image:
    """The upload as a browser shows it: upright, 8-bit, grey or RGB, alpha kept."""
    if photo.rgb is not None:
        img = Image.fromarray(photo.rgb, "RGB")
    else:
        img = Image.fromarray(np.round(photo.gray * 255.0).astype(np.uint8), "L")
    if photo.alpha is not None:
        img = img.convert("RGBA" if img.mode == "RGB" else "LA")
        img.putalpha(Image.fromarray(photo.alpha, "L"))
    return img
