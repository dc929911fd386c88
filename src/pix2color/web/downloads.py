"""The formats a coloured photo is downloaded in, and the name it is downloaded under."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from pix2color.web.errors import WebError

# download formats: (Pillow format, file extension, MIME type, save options)
OUTPUT_FORMATS = {
    "png": ("PNG", "png", "image/png", {"compress_level": 6}),
    "jpeg": ("JPEG", "jpg", "image/jpeg", {"quality": 92}),
    "webp": ("WEBP", "webp", "image/webp", {"quality": 92}),
}


def parse_format(value: Any) -> str:
    fmt = (str(value or "png")).strip().lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in OUTPUT_FORMATS:
        raise WebError(
            400, f"format must be one of {', '.join(OUTPUT_FORMATS)}; got {str(value)[:40]!r}"
        )
    return fmt


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


def download_name(filename: str, label: str | None, ext: str) -> str:
    """`family.tif` -> `family-colorized.png`; with several results `family-colorized-B.png`."""
    stem = Path(filename).stem or "photo"
    return f"{stem}-colorized{'-' + label if label else ''}.{ext}"
