"""What the page and the API both do: check an upload, colour it, keep the files, expire them.

An upload is checked in two steps. Its header first (cheap, before any slot is taken): the
format must be one of the photo formats below (so SVG, HTML, PDF or PostScript are never handed
to a decoder), the pixel count under the limit (a decompression bomb is refused before it is
decoded), and it must not be animated. Then, inside an inference slot, the whole file is decoded
by `pix2color.data.images`, the same reader the CLI uses (every mode, EXIF, truncation).

Files live in the instance folder under random names: the upload as sent (`<id>.upload`, never
served), a browser-friendly copy of it (`<id>-view.jpg|png`), and one PNG per result. They
expire FILE_TTL seconds after the upload; ratings do not.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import threading
import time
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from pix2color.data.images import ImageError, Photo, read_photo
from pix2color.web.engine import Engine
from pix2color.web.errors import WebError
from pix2color.web.store import Store

log = logging.getLogger(__name__)

# Pillow format names this service opens; everything else is refused before decoding
Image.init()  # register every plugin now: Image.open(formats=...) only knows registered ones
PHOTO_FORMATS = tuple(
    f for f in ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM", "TGA") if f in Image.OPEN
)
FORMAT_NAMES = "JPEG, PNG, WebP, TIFF, BMP, GIF, PNM or TGA"
# download formats: (Pillow format, file extension, MIME type, save options)
OUTPUT_FORMATS = {
    "png": ("PNG", "png", "image/png", {"compress_level": 6}),
    "jpeg": ("JPEG", "jpg", "image/jpeg", {"quality": 92}),
    "webp": ("WEBP", "webp", "image/webp", {"quality": 92}),
}
LABELS = "ABCDEFGH"


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


def download_name(filename: str, label: str | None, ext: str) -> str:
    """`family.tif` -> `family-colorized.png`; with several results `family-colorized-B.png`."""
    stem = Path(filename).stem or "photo"
    return f"{stem}-colorized{'-' + label if label else ''}.{ext}"


def parse_size(value: Any, config: Mapping[str, Any]) -> int:
    """The working size from a form or query value (default when empty), range-checked."""
    lo, hi = config["MIN_SIZE"], config["MAX_SIZE"]
    if value in (None, ""):
        return int(config["DEFAULT_SIZE"])
    try:
        size = int(str(value).strip())
    except ValueError:
        size = None
    if size is None or not lo <= size <= hi:
        raise WebError(
            400,
            f"size must be a whole number of pixels from {lo} to {hi} (the long side the model "
            f"sees; {config['DEFAULT_SIZE']} is typical, smaller gives bolder colour); "
            f"got {str(value)[:40]!r}",
        )
    return size


def parse_format(value: Any) -> str:
    fmt = (str(value or "png")).strip().lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in OUTPUT_FORMATS:
        raise WebError(
            400, f"format must be one of {', '.join(OUTPUT_FORMATS)}; got {str(value)[:40]!r}"
        )
    return fmt


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
            f"{filename}: {w}x{h} is {w * h / 1e6:.1f} megapixels; this server colours photos "
            f"up to {max_pixels / 1e6:.0f} megapixels: downscale it first",
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


def encode(img: Image.Image, fmt: str) -> bytes:
    """An image as PNG (alpha kept), JPEG (alpha flattened onto white) or WebP bytes."""
    pil_format, _, _, options = OUTPUT_FORMATS[fmt]
    if pil_format == "JPEG" and img.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img.convert("RGBA"), mask=img.getchannel("A"))
        img = flat
    buf = io.BytesIO()
    img.save(buf, format=pil_format, **options)
    return buf.getvalue()


@dataclass
class Service:
    """The store, the models and the instance folder's files, shared by every request."""

    store: Store
    engine: Engine
    folder: Path  # the instance folder
    config: Mapping[str, Any]
    _cleanup_lock: threading.Lock = field(default_factory=threading.Lock)
    _last_cleanup: float = 0.0

    @property
    def files(self) -> Path:
        return self.folder / "files"

    # ------------------------------------------------------------------ colouring
    def _save_upload(self, file: FileStorage | None) -> tuple[Path, str]:
        if file is None or (not file.filename and not file.content_length):
            raise WebError(400, "no photo in the request: send it in the form field 'image'")
        filename = client_filename(file.filename)
        self.files.mkdir(parents=True, exist_ok=True)
        path = self.files / f"{new_id()}.upload"
        file.save(path)
        return path, filename

    def _colorize(
        self, path: Path, filename: str, models: list[str], size: int
    ) -> tuple[Photo, list[tuple[str, Image.Image, float]]]:
        """Decode and colour with each model; call inside `engine.slot()` (memory-bound)."""
        photo = decode(path, filename)
        outputs = []
        for model in models:
            t = time.perf_counter()
            img = self.engine.colorize(model, photo, size)
            outputs.append((model, img, time.perf_counter() - t))
        w, h = photo.size
        log.info("coloured %s (%dx%d) at %d with %s", filename, w, h, size, ", ".join(models))
        return photo, outputs

    def _save_results(self, outputs: list[tuple[str, Image.Image, float]]) -> list[dict]:
        """Write each output as PNG under a random name, labelled A, B, ... in random order."""
        order = list(range(len(outputs)))
        secrets.SystemRandom().shuffle(order)  # neutral labels in a random order
        results = []
        for label, i in zip(LABELS, order, strict=False):
            model, img, seconds = outputs[i]
            rid = new_id()
            img.save(self.files / f"{rid}.png", format="PNG", compress_level=3)
            results.append(
                dict(id=rid, model=model, label=label, file=f"{rid}.png", seconds=seconds)
            )
        return results

    def _add_job(self, upload_id: str, results: list[dict], size: int) -> dict[str, Any]:
        job = dict(id=new_id(), upload_id=upload_id, size=size, created_at=time.time())
        self.store.add_job(job, results)
        found = self.store.get_job(job["id"])
        assert found is not None, "a job just written must be readable"
        return found

    def colorize_upload(
        self, file: FileStorage | None, *, size: int, models: list[str] | None = None
    ) -> dict[str, Any]:
        """The page's upload: keep the photo, colour it with each model -> the new job."""
        path, filename = self._save_upload(file)
        upload_id = new_id()
        try:
            check_header(path, filename, self.config["MAX_PIXELS"])
            # decoding, colouring and encoding hold the slot: together they are the memory
            with self.engine.slot():
                models = models or self.compared_models()
                photo, outputs = self._colorize(path, filename, models, size)
                # the page's "before": upright and 8-bit, JPEG unless it has transparency
                alpha = photo.alpha is not None
                view_name = f"{upload_id}-view.{'png' if alpha else 'jpg'}"
                view_image(photo).save(self.files / view_name, **({} if alpha else {"quality": 90}))
                results = self._save_results(outputs)
                (width, height), fmt = photo.size, photo.format
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        now = time.time()
        self.store.add_upload(
            dict(id=upload_id, filename=filename, stored=path.name, view=view_name,
                 width=width, height=height, format=fmt, source="web", created_at=now,
                 expires_at=now + self.config["FILE_TTL"])
        )  # fmt: skip
        return self._add_job(upload_id, results, size)

    def rerun(self, job: dict[str, Any], size: int) -> dict[str, Any]:
        """Colour a kept upload again at another working size -> a new job (new labels)."""
        path = self.files / (job["stored"] or "-")
        if not job["stored"] or not path.is_file():
            raise WebError(404, "this photo has expired; upload it again")
        models = [r["model"] for r in job["results"] if r["model"] in self.engine.colorizers]
        models = models or self.compared_models()  # its models were all taken away: new ones
        with self.engine.slot():
            _, outputs = self._colorize(path, job["filename"], models, size)
            results = self._save_results(outputs)
        return self._add_job(job["upload_id"], results, size)

    def colorize_api(
        self, file: FileStorage | None, *, model: str, size: int, fmt: str
    ) -> tuple[bytes, str, str, str]:
        """The API: colour one photo with one model -> (bytes, MIME type, file name, job id).

        No file is kept; the job is recorded (without files) so that it can be rated.
        """
        path, filename = self._save_upload(file)
        try:
            check_header(path, filename, self.config["MAX_PIXELS"])
            with self.engine.slot():
                photo, [(_, img, seconds)] = self._colorize(path, filename, [model], size)
                data = encode(img, fmt)
        finally:
            path.unlink(missing_ok=True)
        now = time.time()
        upload_id, rid = new_id(), new_id()
        w, h = photo.size
        self.store.add_upload(
            dict(id=upload_id, filename=filename, stored=None, view=None, width=w, height=h,
                 format=photo.format, source="api", created_at=now,
                 expires_at=now + self.config["FILE_TTL"])
        )  # fmt: skip
        job = dict(id=new_id(), upload_id=upload_id, size=size, created_at=now)
        self.store.add_job(job, [dict(id=rid, model=model, label="A", seconds=seconds)])
        _, ext, mime, _ = OUTPUT_FORMATS[fmt]
        return data, mime, download_name(filename, None, ext), job["id"]

    def compared_models(self) -> list[str]:
        """The models a page upload is coloured with: all of them, or a random few."""
        names = self.engine.names
        k = max(1, min(len(names), int(self.config["COMPARE_MODELS"])))
        return secrets.SystemRandom().sample(names, k) if k < len(names) else names

    # ------------------------------------------------------------------ expiry
    def cleanup(self, now: float | None = None) -> int:
        """Delete expired uploads and their files, and stray files older than the TTL."""
        now = time.time() if now is None else now
        removed = 0
        for name in self.store.expire(now):
            try:
                (self.files / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        # files a crash left without a database row (nothing lives longer than the TTL)
        cutoff = now - self.config["FILE_TTL"] - 60
        if self.files.is_dir():
            for entry in os.scandir(self.files):
                try:
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    pass
        if removed:
            log.info("expired %d file(s)", removed)
        return removed

    def maybe_cleanup(self) -> None:
        """Run cleanup() at most every CLEANUP_INTERVAL seconds, in one thread at a time."""
        now = time.time()
        if now - self._last_cleanup < self.config["CLEANUP_INTERVAL"]:
            return
        if self._cleanup_lock.acquire(blocking=False):
            try:
                self._last_cleanup = now
                self.cleanup(now)
            except Exception:
                log.exception("expiring old files failed; will try again later")
            finally:
                self._cleanup_lock.release()
