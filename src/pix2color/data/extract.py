"""Copy the photos and licence files out of an unpacked Debian package, for `data fetch`.

The members matching a source's patterns are copied under flat names ("Indoors__kitchen.jpg"),
drawings excluded by name and non-photo formats left out; photos packed inside Qt resource
files are read with `rcc.iter_rcc`, with the README credits beside them; a KPhotoAlbum
index.xml turns photos upright and names their scenes. The package's copyright file becomes
COPYRIGHT, its own licence files LICENCE-*.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from PIL import Image, ImageOps

from pix2color.data.rcc import iter_rcc
from pix2color.data.sources import Source

logger = logging.getLogger(__name__)

# Raster photo formats worth keeping; GIF and SVG files in these packages are drawings.
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
# Files inside .rcc resources that credit the authors of the photos beside them.
CREDIT_NAMES = frozenset({"README", "README.txt", "README.md", "LICENSE", "COPYING", "AUTHORS"})


def matches(member: str, pattern: str) -> bool:
    """Glob match per path component, so "demo/*.jpg" does not reach into demo/sub/."""
    parts, pats = PurePosixPath(member).parts, PurePosixPath(pattern).parts
    return len(parts) == len(pats) and all(
        fnmatchcase(a, p) for a, p in zip(parts, pats, strict=True)
    )


def _flat_name(relative: Sequence[str]) -> str:
    """Path components -> one file name: ("Indoors", "kitchen.jpg") -> "Indoors__kitchen.jpg"."""
    name = "__".join(relative)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _literal_depth(pattern: str) -> int:
    """How many leading components of `pattern` have no wildcard (they are left out of names).

    The last component (the file name) always stays, also in a pattern without wildcards.
    """
    parts = PurePosixPath(pattern).parts
    depth = 0
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        depth += 1
    return depth


def collect(
    source: Source, unpacked: Path, wanted: dict[str, str], staging: Path
) -> tuple[list[str], list[str], list[str]]:
    """Copy the photos among the unpacked members -> (file names, skipped notes, credit texts)."""
    names: list[str] = []
    skipped: list[str] = []
    credits: list[str] = []
    for member, pattern in sorted(wanted.items()):
        path = unpacked / member
        if path.is_symlink() or not path.is_file():
            skipped.append(f"{member} (not a regular file)")
        elif source.rcc:
            got, left, credit = _copy_from_rcc(path, staging, source.exclude)
            names += got
            skipped += left
            credits += credit
        elif path.suffix.lower() not in PHOTO_SUFFIXES:
            skipped.append(f"{member} (not a raster photo)")
        else:
            name = _flat_name(PurePosixPath(member).parts[_literal_depth(pattern) :])
            if any(fnmatchcase(name, glob) for glob in source.exclude):
                skipped.append(f"{member} (a drawing, excluded by name)")
                continue
            name = _unique(staging, name)
            shutil.copyfile(path, staging / name)
            names.append(name)
    return names, skipped, credits


def apply_album_index(
    index_xml: Path, folder: Path, names: list[str]
) -> tuple[list[str], dict[str, str]]:
    """Use a KPhotoAlbum index.xml -> (file names, {file name: scene label}).

    Photos are turned upright per their clockwise `angle` (turned ones become PNG), and photos
    sharing a `label` (bar55.jpg, bar55_2.jpg: two shots of one evening) form one scene, which
    `prepare` keeps in one split.
    """
    turn = {
        90: Image.Transpose.ROTATE_270,  # Pillow's ROTATE_* are anticlockwise
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }
    angles, labels = {}, {}
    for node in ElementTree.parse(index_xml).iter("image"):
        name = PurePosixPath(node.get("file", "")).name
        angles[name] = int(node.get("angle", "0") or 0) % 360
        # KPhotoAlbum leaves the label out when it is the default, the file name's stem.
        labels[name] = node.get("label") or PurePosixPath(name).stem
    result, scenes = [], {}
    for name in names:
        angle = angles.get(name, 0)
        new_name = name
        if angle in turn:
            with Image.open(folder / name) as img:
                upright = ImageOps.exif_transpose(img).transpose(turn[angle])
            new_name = _unique(folder, PurePosixPath(name).stem + ".png")
            upright.save(folder / new_name)  # PNG: no second round of JPEG loss
            (folder / name).unlink()
        elif angle:
            logger.warning("%s: angle %d in %s is not a multiple of 90; left as is",
                           name, angle, index_xml.name)  # fmt: skip
        result.append(new_name)
        if name in labels:
            scenes[new_name] = labels[name]
    return result, scenes


def _unique(folder: Path, name: str) -> str:
    """`name`, or name-2, name-3, ... if a file of that name is already in `folder`."""
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    return candidate


def _copy_from_rcc(
    rcc_path: Path, folder: Path, exclude: Sequence[str] = ()
) -> tuple[list[str], list[str], list[str]]:
    """Write the photos in one .rcc to `folder` -> (file names, skipped entries, credit texts)."""
    names, skipped, credits = [], [], []
    for resource, data in iter_rcc(rcc_path):
        parts = resource.split("/")
        # "gcompris/src/activities/erase/resource/x.webp" -> "erase__x.webp"
        rel = parts[parts.index("resource") + 1 :] if "resource" in parts else parts[-1:]
        if parts[-1] in CREDIT_NAMES:
            text = data.decode("utf-8", "replace")
            credits.append(f"==> {rcc_path.name}:/{resource} <==\n{text}")
            continue
        if PurePosixPath(resource).suffix.lower() not in PHOTO_SUFFIXES:
            skipped.append(f"{rcc_path.name}:/{resource}")
            continue
        name = _flat_name([rcc_path.stem, *rel])
        if any(fnmatchcase(name, glob) for glob in exclude):
            skipped.append(f"{rcc_path.name}:/{resource} (excluded by name)")
            continue
        name = _unique(folder, name)
        (folder / name).write_bytes(data)
        names.append(name)
    return names, skipped, credits


def copy_licences(
    source: Source, version: str, unpacked: Path, members: dict[str, str], staging: Path
) -> None:
    """COPYRIGHT (the package's, or a note that it has none) and LICENCE-* into `staging`."""
    pkg = source.package
    if source.copyright_member in members:
        shutil.copyfile(unpacked / source.copyright_member, staging / "COPYRIGHT")
    else:
        (staging / "COPYRIGHT").write_text(
            f"The Debian package {pkg} {version} ships no copyright file; see its source "
            f"package's /usr/share/doc/*/copyright. pix2color's note: {source.note}\n"
        )
    for member in source.licence_files:
        if member in members:
            shutil.copyfile(unpacked / member, staging / f"LICENCE-{Path(member).name}")
        else:
            logger.warning("%s: no %s in the package", pkg, member)
