"""Fetch real colour photos from Debian packages into `dest/<source>/`, keeping their licences.

Each source is a Debian package. Its .deb is downloaded with `apt-get download` into
`dest/.debs` (nothing is installed), only the photo paths are unpacked with
`dpkg-deb --fsys-tarfile X.deb | tar -x`, and the photos are copied to `dest/<source>/` beside the
package's `COPYRIGHT` and a `SOURCE.json` (package, version, files, date). Photos packed inside Qt
resource files (gcompris) are read with `rcc.iter_rcc`; their per-folder README credits are kept in
`CREDITS.txt`. Packages reserved for the independent evaluation are refused.

The sources are the table in sources.toml (read by `sources`); downloading and unpacking a .deb
is `deb`'s work, copying the photos and licences out of it `extract`'s; this module runs them
per source and writes SOURCE.json.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pix2color.data.deb import (
    FetchError,
    Runner,
    download,
    list_members,
    run_command,
    unpack,
    version_of,
)
from pix2color.data.extract import apply_album_index, collect, copy_licences, matches
from pix2color.data.sources import DEFAULT_SOURCES, SOURCES, Source
from pix2color.errors import UsageError

logger = logging.getLogger(__name__)

RESERVED_PACKAGES = frozenset(
    {
        "mate-backgrounds",
        "plasma-workspace-wallpapers",
        "tuxpaint-data",
        "palapeli-data",
        "opencv-doc",
    }
)
RESERVED_PREFIXES = ("lomiri-wallpapers",)


@dataclass
class SourceReport:
    """What happened to one source: "fetched", "complete" (already there) or "failed"."""

    source: str
    status: str
    folder: Path
    files: int = 0
    version: str = ""
    error: str = ""
    skipped: list[str] = field(default_factory=list)  # entries left out (not a raster photo)

    @property
    def ok(self) -> bool:
        """True unless the source failed."""
        return self.status != "failed"


def check_allowed(name: str) -> None:
    """Raise UsageError for a reserved evaluation package or a source this module does not know."""
    if name in RESERVED_PACKAGES or name.startswith(RESERVED_PREFIXES):
        raise UsageError(
            f"{name}: this package is reserved for the independent evaluation of pix2color on "
            "photos it has never seen; it must never be used for training or validation"
        )
    if name not in SOURCES:
        raise UsageError(f"{name}: unknown source; choose from {', '.join(SOURCES)}")


def fetch(
    dest: Path,
    sources: Sequence[str] | None = None,
    *,
    runner: Runner = run_command,
    force: bool = False,
) -> list[SourceReport]:
    """Fetch each source into dest/<source>/ (default: DEFAULT_SOURCES); one report per source."""
    names = list(DEFAULT_SOURCES if sources is None else sources)
    for name in names:  # refuse the whole request before downloading anything
        check_allowed(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    reports = []
    for name in names:
        folder = dest / name
        if not force and is_complete(folder):
            meta = json.loads((folder / "SOURCE.json").read_text())
            logger.info("%s: already complete in %s (%d files)", name, folder, meta["files"])
            reports.append(
                SourceReport(name, "complete", folder, meta["files"], meta.get("version", ""))
            )
            continue
        try:
            reports.append(_fetch_one(SOURCES[name], dest, runner))
        except (FetchError, OSError, ValueError, SyntaxError) as err:
            # One broken source (download, corrupt .rcc or index.xml, full disk) must not
            # cost the others; the caller reports the failures and exits non-zero.
            message = str(err) if str(err).startswith(name) else f"{name}: {err}"
            logger.info("failed: %s", message)
            reports.append(SourceReport(name, "failed", folder, error=message))
    return reports


def is_complete(folder: Path) -> bool:
    """True if `folder` holds a SOURCE.json and every file it lists."""
    meta_path = folder / "SOURCE.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
        names = meta["names"]
    except (ValueError, KeyError, TypeError):
        return False
    return len(names) == meta.get("files") and all((folder / n).is_file() for n in names)


def _fetch_one(source: Source, dest: Path, runner: Runner) -> SourceReport:
    """Download, unpack and copy one source; the folder appears only once it is complete."""
    pkg = source.package
    deb = download(pkg, dest / ".debs", runner)
    version = version_of(deb, pkg, runner)
    listing = list_members(deb, pkg, runner)
    members, wanted, extras = _select_members(source, version, listing)
    with tempfile.TemporaryDirectory(prefix=f".{pkg}-", dir=dest) as tmp_str:
        tmp = Path(tmp_str)
        unpacked, staging = tmp / "unpacked", tmp / pkg
        unpacked.mkdir()
        staging.mkdir()
        member_list = tmp / "members.txt"
        member_list.write_text("\n".join(members[m] for m in [*wanted, *extras]) + "\n")
        unpack(deb, member_list, unpacked, pkg, runner)
        names, skipped, credits = collect(source, unpacked, wanted, staging)
        if not names:
            raise FetchError(f"{pkg} {version}: the matched files hold no JPEG/PNG/WebP photo")
        scenes: dict[str, str] = {}
        if source.album_index and source.album_index in members:
            names, scenes = apply_album_index(unpacked / source.album_index, staging, names)
        copy_licences(source, version, unpacked, members, staging)
        if credits:
            (staging / "CREDITS.txt").write_text("\n".join(credits))
        meta = {
            "source": pkg,
            "package": pkg,
            "version": version,
            "deb": deb.name,
            "patterns": list(source.patterns),
            "files": len(names),
            "names": sorted(names),
            "skipped": skipped,
            # Photos of one scene (same label), for prepare to keep in one split.
            "scenes": scenes,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (staging / "SOURCE.json").write_text(json.dumps(meta, indent=2) + "\n")
        folder = dest / pkg
        if folder.exists():
            shutil.rmtree(folder)  # an incomplete earlier attempt (complete ones were skipped)
        staging.rename(folder)
    logger.info(
        "%s %s: %d photos in %s, %d skipped", pkg, version, len(names), folder, len(skipped)
    )
    return SourceReport(pkg, "fetched", folder, len(names), version, skipped=skipped)


def _select_members(
    source: Source, version: str, listing: str
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """What to unpack from `tar -t`'s listing -> (members, {photo member: its pattern}, extras).

    Members map each name without tar's "./" to tar's spelling (kept for extraction); extras
    are the copyright file, album index and licence files the package has.
    """
    pkg = source.package
    members = {m.removeprefix("./"): m for m in listing.splitlines() if m and not m.endswith("/")}
    wanted: dict[str, str] = {}
    for plain in members:
        pattern = next((p for p in source.patterns if matches(plain, p)), None)
        if pattern is not None:
            wanted[plain] = pattern
    if not wanted:
        raise FetchError(
            f"{pkg} {version}: no file matches {', '.join(source.patterns)}; the package layout "
            "has changed, update its table in pix2color/data/sources.toml"
        )
    extras = [
        m
        for m in (source.copyright_member, source.album_index, *source.licence_files)
        if m and m in members
    ]
    if source.copyright_member not in members:
        logger.warning("%s: no %s in the package; COPYRIGHT names it", pkg, source.copyright_member)
    return members, wanted, extras
