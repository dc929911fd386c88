"""The instance folder's files: what each is called, writing them, downloads, and expiry.

Files live in the instance folder under random names: the upload as sent (`<id>.upload`, never
served), a browser-friendly copy of it (`<id>-view.jpg|png`), one PNG per result, a thumbnail
of the view and of each result (`...-thumb.webp`, THUMB_SIDE px at most: what the page shows
until someone asks for full size), and the result's JPEG or WebP once somebody downloads it in
that format (`<result id>.jpg|webp`: encoded once, in an inference slot, then sent from the
file), and the network's working-size colour of each result (`<result id>-ab.npy`: ab and the
working-size L, (3, h, w) float32), so that new colour points re-colour a result with
propagation and the join only, without the network (jobs.Service.recolor), and, once someone
asks for colour suggestions, the upload's colour distribution (`<upload>-classes.npz`:
web/suggestions.py). They expire FILE_TTL seconds after the upload; ratings do not.

`InstanceFiles` keeps them; jobs.Service, the one service of a server process, is one.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pix2color.inference.spine import Prediction
from pix2color.web.downloads import OUTPUT_FORMATS, encode
from pix2color.web.engine import Engine
from pix2color.web.errors import WebError
from pix2color.web.settings import WebSettings
from pix2color.web.store import Store
from pix2color.web.suggestions import classes_name

log = logging.getLogger(__name__)

DERIVED = tuple(ext for _, ext, _, _ in OUTPUT_FORMATS.values() if ext != "png")  # jpg, webp
THUMB_SIDE = 1280  # the page shows thumbnails this long at most; full size only when asked


def thumb_name(name: str) -> str:
    """`<id>.png` -> `<id>-thumb.webp`: the page's copy of an image (WebP keeps alpha)."""
    return f"{name.rsplit('.', 1)[0]}-thumb.webp"


def color_name(name: str) -> str:
    """`<id>.png` -> `<id>-ab.npy`: a result's working-size colour, for re-colouring."""
    return f"{name.rsplit('.', 1)[0]}-ab.npy"


def derived_names(name: str) -> list[str]:
    """The files made from a kept file, which expire with it: its thumbnail, its downloads,
    its working-size colour, its colour distribution (suggestions)."""
    stem = name.rsplit(".", 1)[0]
    made = (
        thumb_name(name), color_name(name), classes_name(name),
        *(f"{stem}.{ext}" for ext in DERIVED),
    )  # fmt: skip
    return [n for n in made if n != name]


class InstanceFiles:
    """The store, the models and the instance folder's files, shared by every request."""

    def __init__(self, store: Store, engine: Engine, settings: WebSettings) -> None:
        self.store, self.engine, self.settings = store, engine, settings
        self.files = settings.files
        self._cleanup_lock = threading.Lock()
        self._last_cleanup = 0.0
        # one encoding per result and format at a time: the others wait, then find the file
        self._encode_locks = [threading.Lock() for _ in range(64)]

    def _save_thumb(self, image: Image.Image, name: str, method: int = 4) -> None:
        """The page's copy: THUMB_SIDE px at most (a view and its results get the same size).
        method: WebP's effort, 0-6 (0: about 4x faster, files ~20 % larger)."""
        w, h = image.size
        scale = min(1.0, THUMB_SIDE / max(w, h))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        thumb = image if scale == 1.0 else image.resize(size, Image.Resampling.BICUBIC, None, 2.0)
        thumb.save(self.files / thumb_name(name), format="WEBP", quality=85, method=method)

    # ------------------------------------------------------------------ colour points
    def _save_color(self, name: str, predicted: Prediction) -> None:
        color = np.concatenate([predicted.ab, predicted.L_small]).astype(np.float32)  # (3, h, w)
        path = self.files / color_name(name)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        with open(tmp, "wb") as f:
            np.save(f, color)
        os.replace(tmp, path)

    def _load_color(self, name: str) -> Prediction | None:
        try:
            color = np.load(self.files / color_name(name))
        except (OSError, ValueError):  # not kept (a result from before), or half gone: predict
            return None
        return Prediction(color[:2], color[2:])

    # ------------------------------------------------------------------ downloads
    def encoded(self, result: dict[str, Any], fmt: str) -> Path:
        """A kept result's file in `fmt`: the PNG itself, or its JPEG/WebP, encoded on first
        request inside an inference slot (a 25 MP encode is a second of CPU and ~100 MB) and
        kept beside it until the upload expires."""
        png = self.files / result["file"]
        _, ext, _, _ = OUTPUT_FORMATS[fmt]
        if ext == "png":
            return png
        path = png.with_suffix(f".{ext}")
        with self._encode_locks[hash(path.name) % len(self._encode_locks)]:
            if path.is_file():
                return path
            if not png.is_file():
                raise WebError(404, "this photo has expired; upload it again")
            with self.engine.slot(result["width"] * result["height"]):
                with Image.open(png) as img:
                    data = encode(img, fmt)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # whole or absent, never half a file
        return path

    # ------------------------------------------------------------------ expiry
    def cleanup(self, now: float | None = None) -> int:
        """Delete expired uploads and their files, and stray files older than the TTL."""
        now = time.time() if now is None else now
        removed = 0
        for name in self.store.expire(now):
            for each in (name, *derived_names(name)):  # with its thumbnail and downloads
                try:
                    (self.files / each).unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
        # files a crash left without a database row (nothing lives longer than the TTL)
        cutoff = now - self.settings.file_ttl - 60
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
        if now - self._last_cleanup < self.settings.cleanup_interval:
            return
        if self._cleanup_lock.acquire(blocking=False):
            try:
                self._last_cleanup = now
                self.cleanup(now)
            except Exception:
                log.exception("expiring old files failed; will try again later")
            finally:
                self._cleanup_lock.release()
