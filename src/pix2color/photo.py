"""Reading photos of any mode Pillow knows, the same way for training and for colorizing.

Every reader applies the EXIF orientation (the photo as people see it), decodes the whole file
(so a truncated file fails here, not halfway through a batch), and turns Pillow's many modes
(1, L, LA, I;16, I, F, P, PA, RGB, RGBA, CMYK, YCbCr, ...) into three things: 8-bit RGB for
training, a full-precision grey level for colorizing, and the alpha channel when there is one.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
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
    info: dict = field(default_factory=dict)  # dpi, icc_profile, exif to write back (KEPT_INFO)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as displayed."""
        h, w = (self.levels if self.levels is not None else self.rgb).shape[:2]
        return w, h

    @property
    def gray(self) -> np.ndarray:
        """(H, W) float32 grey level in [0, 1] (Rec. 601 luma if the photo had colour).

        Computed at full size on each call (4 bytes a pixel): the colorizer reads `levels`.
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
    info = kept_info(img)
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if ("transparency" in img.info or mode == "PA") else "RGB")
        mode = img.mode
    if mode in ("LA", "La", "RGBA", "RGBa"):
        alpha = np.asarray(img.getchannel("A")).copy()
        img = img.convert("L" if mode.startswith("L") else "RGB")
        mode = img.mode
    if mode in _SIXTEEN_BIT or mode == "F":
        return Photo(path, fmt, _high_bit_levels(img), None, alpha, info)
    if mode in ("1", "L"):
        levels = np.asarray(img if mode == "L" else img.convert("L"))
        return Photo(path, fmt, levels, None, alpha, info)
    try:
        # an RGB image is read as it is: img.convert("RGB") would be one more full-size copy
        rgb = np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as e:
        raise ImageError(f"{path}: image mode {mode} cannot be converted to RGB ({e})") from None
    return Photo(path, fmt, None, rgb, alpha, info)


# What is written back from the input file: resolution, colour profile, EXIF (its orientation
# is already applied and removed by the upright decode)
KEPT_INFO = ("dpi", "icc_profile", "exif")
# ImageDescription, Make, Model, Software, DateTime, Artist, Copyright
TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)


def kept_info(img: Image.Image) -> dict:
    """The input's dpi, ICC profile and EXIF that the output can carry.

    An ICC profile is kept only if it describes RGB: a grey or CMYK profile attached to the
    coloured RGB output would tell viewers to read its values wrongly (the output is sRGB).
    """
    info = {k: img.info[k] for k in KEPT_INFO if img.info.get(k)}
    if "exif" not in info and img.format == "TIFF":
        # a TIFF's descriptive tags live in its own IFD, beside the tags that describe its pixels
        # (sizes, strips, compression), which must not be copied onto another image
        tags = img.getexif()
        exif = Image.Exif()
        for tag in TIFF_DESCRIPTIVE_TAGS:
            if tag in tags:
                exif[tag] = tags[tag]
        if len(exif):
            info["exif"] = exif.tobytes()
    icc = info.get("icc_profile")
    if icc is not None and bytes(icc[16:20]) != b"RGB ":
        del info["icc_profile"]
    return info


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
# formats whose Pillow writer takes dpi / icc_profile / exif
INFO_FORMATS = {
    "JPEG": KEPT_INFO,
    "PNG": KEPT_INFO,
    "TIFF": KEPT_INFO,
    "WEBP": ("icc_profile", "exif"),
}
DEPTH16_FORMATS = ("TIFF", "PNG")  # where a 16-bit RGB output can be written


def output_format(photo: Photo, out: Path) -> str:
    """The format save_like writes a photo's result in: the input's, by name or extension."""
    fmt = (photo.format or Image.registered_extensions().get(out.suffix.lower(), "")).upper()
    return "JPEG" if fmt == "MPO" else fmt


def output_depth(photo: Photo, out: Path, depth: int | str = 8) -> int:
    """Bits per channel of a photo's result: `depth` 8, 16 or "input" (the photo's own), but 16
    only where the output format can hold it (TIFF, PNG); JPEG and WebP are 8-bit formats."""
    want = photo.bits if depth == "input" else int(depth)
    return 16 if want == 16 and output_format(photo, out) in DEPTH16_FORMATS else 8


def save_like(img: Image.Image | np.ndarray, photo: Photo, out: Path) -> Path:
    """Save a coloured image in its input's format (PNG stays PNG) -> the path written.

    `img` is a PIL image, or a 16-bit (H, W, 3 or 4) uint16 array (TIFF or PNG only). The
    input's dpi, RGB ICC profile and EXIF are written where the format takes them. Written to
    a temporary file and renamed, so an interrupted run never leaves a half photo that a later
    `--skip-existing` run would take as done. A format Pillow reads but cannot write is saved
    as PNG beside `out` (same stem).
    """
    fmt = output_format(photo, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(img, np.ndarray):
        if fmt not in DEPTH16_FORMATS:
            raise ValueError(f"{out}: 16-bit output is written as TIFF or PNG only, not {fmt}")
        with replacing(out, suffix=".partial") as tmp:
            (_write_tiff16 if fmt == "TIFF" else _write_png16)(img, photo.info, tmp)
        return out
    if fmt == "GIF":
        img = img.convert("RGBA" if img.mode == "RGBA" else "RGB")
    if fmt in ("JPEG", "BMP", "PPM") and img.mode == "RGBA":
        img = img.convert("RGB")
    options = dict(SAVE_OPTIONS.get(fmt, {}))
    kept = {k: photo.info[k] for k in INFO_FORMATS.get(fmt, ()) if k in photo.info}
    # metadata the writer refuses (an odd EXIF block) is dropped rather than the format changed
    for extra in (kept, {}) if kept else ({},):
        try:
            with replacing(out, suffix=".partial") as tmp:
                img.save(tmp, format=fmt or "PNG", **options, **extra)
            return out
        except (KeyError, OSError, ValueError):
            continue
    else:
        fallback = out.with_suffix(".png")
        with replacing(fallback, suffix=".partial") as tmp:
            img.save(tmp, format="PNG")
        return fallback


def _write_tiff16(rgb: np.ndarray, info: dict, path: Path) -> None:
    """(H, W, 3 or 4) uint16 -> uncompressed 16-bit RGB(A) TIFF with dpi and ICC profile.

    Pillow has no 16-bit RGB mode, so tifffile (installed with scikit-image) writes it. EXIF
    is not written (tifffile would need it as separate tags).
    """
    import tifffile

    options: dict = {"photometric": "rgb"}
    if rgb.shape[2] == 4:
        options["extrasamples"] = ("unassalpha",)
    if "dpi" in info:
        options["resolution"] = tuple(float(d) for d in info["dpi"])
        options["resolutionunit"] = "INCH"
    if "icc_profile" in info:
        options["iccprofile"] = bytes(info["icc_profile"])
    with open(path, "wb") as f:
        tifffile.imwrite(f, rgb, **options)


def _write_png16(rgb: np.ndarray, info: dict, path: Path) -> None:
    """(H, W, 3 or 4) uint16 -> 16-bit RGB(A) PNG with dpi, ICC profile and EXIF.

    Pillow cannot write 16-bit RGB PNGs; the format is simple enough to write here: chunks of
    length, type, data, CRC; rows big-endian, each after a filter byte (0: none), deflated in
    bands so that no second full-size copy is made.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    H, W, C = rgb.shape
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, 2 if C == 3 else 6, 0, 0, 0)))
        if "icc_profile" in info:  # name, 0, compression method 0, deflated profile
            f.write(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(info["icc_profile"])))
        if "dpi" in info:  # pixels per metre, unit 1 (metre)
            x, y = (round(float(d) / 0.0254) for d in info["dpi"])
            f.write(chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
        if "exif" in info:
            exif = bytes(info["exif"])
            f.write(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
        deflate = zlib.compressobj(6)
        for r0 in range(0, H, 64):
            rows = rgb[r0 : r0 + 64].astype(">u2").view(np.uint8).reshape(-1, W * C * 2)
            lines = np.concatenate([np.zeros((len(rows), 1), np.uint8), rows], axis=1)
            data = deflate.compress(lines.tobytes())
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", deflate.flush()))
        f.write(chunk(b"IEND", b""))


def output_written(out: Path) -> Path | None:
    """The file save_like wrote for `out` in an earlier run (itself or its PNG fallback)."""
    for candidate in (out, out.with_suffix(".png")):
        if candidate.is_file():
            return candidate
    return None
