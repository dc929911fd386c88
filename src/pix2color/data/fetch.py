"""Fetch real colour photos from Debian packages into `dest/<source>/`, keeping their licences.

Each source is a Debian package. Its .deb is downloaded with `apt-get download` into
`dest/.debs` (nothing is installed), only the photo paths are unpacked with
`dpkg-deb --fsys-tarfile X.deb | tar -x`, and the photos are copied to `dest/<source>/` beside the
package's `COPYRIGHT` and a `SOURCE.json` (package, version, files, date). Photos packed inside Qt
resource files (gcompris) are read with `rcc.iter_rcc`; their per-folder README credits are kept in
`CREDITS.txt`. Packages reserved for the independent evaluation are refused.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from PIL import Image, ImageOps

from pix2color.data.rcc import iter_rcc
from pix2color.errors import UsageError, WorkFailed

logger = logging.getLogger(__name__)

# Raster photo formats worth keeping; GIF and SVG files in these packages are drawings.
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
# Files inside .rcc resources that credit the authors of the photos beside them.
CREDIT_NAMES = frozenset({"README", "README.txt", "README.md", "LICENSE", "COPYING", "AUTHORS"})

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


@dataclass(frozen=True)
class Source:
    """A Debian package and the glob patterns (one per path component) of its photos."""

    package: str
    patterns: tuple[str, ...]  # paths inside the package; "*" never crosses a "/"
    rcc: bool = False  # the patterns name Qt resource files that hold the photos
    default: bool = True
    note: str = ""
    # Photo file names (globs) to leave out: drawings that are not photos, checked by eye.
    exclude: tuple[str, ...] = ()
    # A KPhotoAlbum index.xml inside the package: its angle="90|180|270" attributes say how to
    # turn each photo upright (these JPEGs carry no EXIF orientation), its labels name scenes.
    album_index: str = ""
    # Licence or credit files inside the package, kept beside COPYRIGHT (e.g. a wallpaper
    # folder's own licence that Debian's copyright file does not repeat).
    licence_files: tuple[str, ...] = ()

    @property
    def copyright_member(self) -> str:
        """Where a Debian package keeps its copyright file."""
        return f"usr/share/doc/{self.package}/copyright"


_GCOMPRIS_RCC = (
    "erase",
    "explore_world_animals",
    "explore_farm_animals",
    "explore_monuments",
    "explore_world_music",
    "categorization",
    "clickgame",
)

SOURCES: dict[str, Source] = {
    s.package: s
    for s in (
        Source(
            "endless-sky-data",
            ("usr/share/games/endless-sky/images/land/*.jpg",),
            note="~270 landscapes, coasts and cities, 720x360; public domain or CC-BY-SA",
        ),
        Source(
            "gcompris-qt-data",
            tuple(f"usr/share/gcompris-qt/rcc/{name}.rcc" for name in _GCOMPRIS_RCC),
            rcc=True,
            note="animals, monuments, music, fish (WebP inside .rcc); Wikimedia CC-BY/-SA/CC0",
        ),
        Source(
            "scratch",
            ("usr/share/scratch/Media/Backgrounds/*/*",),
            note="towns, nature, indoor and sports backgrounds, 480x360; CC-BY-SA-3.0",
            # The GIFs are all drawings (left out as non-photo formats); these JPEG/PNG are too.
            # Colourfulness and flatness do not separate them from the WebP photos of gcompris.
            exclude=(
                "Indoors__party-room.*",
                "Indoors__room1.*",
                "Indoors__room2.*",
                "Indoors__room3.*",
                "Indoors__spotlight-stage.*",
                "Nature__woods-and-bench.*",
                "Outdoors__school2.*",
                "Sports__basketball-court2.*",
            ),
        ),
        Source(
            "kphotoalbum",
            ("usr/share/kphotoalbum/demo/*.jpg",),
            note="people, dogs, travel, 800x600 (some turned upright per index.xml); GPL-2+",
            album_index="usr/share/kphotoalbum/demo/index.xml",
        ),
        Source(
            "lxqt-themes",
            tuple(
                f"usr/share/lxqt/wallpapers/{name}"
                for name in (
                    "Butterfly-Kenneth-Wimer.jpg",
                    "Valendas.png",
                    "after-the-rain.jpg",
                    "appleflower.png",
                    "beam.png",
                    "butterfly.png",
                    "cloud.png",
                    "drop.png",
                    "flowers.png",
                    "fog.jpg",
                    "this-is-not-windows.jpg",
                )
            ),
            note="11 nature photos, 1920-3000 px (the other wallpapers are renders); CC-BY-SA-3.0",
            licence_files=("usr/share/lxqt/wallpapers/License",),
        ),
        Source(
            "libelementary-data",
            tuple(
                f"usr/share/elementary/images/{name}"
                for name in (
                    "insanely_huge_test_image.jpg",
                    "mystrale.jpg",
                    "mystrale_2.jpg",
                    "plant_01.jpg",
                    "rock_0?.jpg",
                    "sky_0?.jpg",
                    "twofish.jpg",
                    "static_webp_image.webp",
                )
            ),
            note="12 photos: people, dogs, skies, ivy, stone walls, a fjord; BSD-2-clause",
        ),
        Source(
            "forensics-samples-files",
            (
                "usr/share/forensics-samples/original-files/pic?/IMG*.jpg",
                "usr/share/forensics-samples/original-files/pic?/IMG*.JPG",
            ),
            note="6 phone photos up to 4000x3000 (dogs, a railway, a table); CC-BY-SA-4.0",
        ),
        Source(
            "sddm-theme-maldives",
            ("usr/share/sddm/themes/maldives/background.jpg",),
            note="1 beach photo, 2592x1754, by Nevit Dilmen (Wikimedia Commons); CC-BY-3.0",
        ),
        # Small finds (session 4): documentation, test-data and game packages that each hold a
        # few real photos, every file looked at by eye; processed copies, drawings, renders and
        # screenshots beside them are left out by naming only the originals.
        Source(
            "libjxl-testdata",
            (
                "usr/share/libjxl-testdata/external/wesaturate/500px/*_srgb8.png",
                "usr/share/libjxl-testdata/jxl/flower/flower.png",
                "usr/share/libjxl-testdata/jxl/hdr_room.png",
            ),
            note="5 photos: sea cliff, tulips, blossom (CC0), flowers, a room (BSD-3-clause)",
        ),
        Source(
            "ruby-rmagick-doc",
            ("usr/share/doc/ruby-rmagick-doc/html/ex/images/*.jpg",),
            note="11 RMagick example photos (cheetah, balloons, rocks, people), 167-1024 px; MIT",
            exclude=("image_with_profile.jpg",),  # a colour-profile test with an odd green cast
        ),
        Source(
            "renpy-demo",
            (
                "usr/share/games/renpy/demo/game/gui/main_menu.jpg",
                "usr/share/games/renpy/demo/game/images/bg cave.jpg",
                "usr/share/games/renpy/demo/game/images/bg washington.jpg",
                "usr/share/games/renpy/demo/game/images/bg whitehouse.jpg",
            ),
            note="4 photos, 1280x720: a country road, a cave, Washington; Expat",
        ),
        Source(
            "gimp-help-en",
            tuple(
                f"usr/share/gimp/2.0/help/en/images/{name}"
                for name in (
                    "filters/examples/taj_orig.png",
                    "filters/examples/kvitveis-orig.png",
                    "filters/examples/enhance/high-pass-origin.png",
                    "filters/examples/distort/spherize-ex-orig.jpg",
                    "filters/examples/light-and-shadow/vignette-ex-orig.jpg",
                    "filters/examples/map/little_planet-origin.jpg",
                    "filters/examples/blur/mean_curvature-ex-1.jpg",
                    "tutorials/quickie-crop-example-source.jpg",
                    "tutorials/quickie-flip-example-source.jpg",
                    "tutorials/quickie-jpeg-100.jpg",
                    "tutorials/quickie-remove-background-source.jpg",
                    "tutorials/quickie-rotate-example-source.jpg",
                    "tutorials/quickie-scale-example.jpg",
                    "tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg",
                    "tutorials/tone-mapping/power-lines.jpg",
                    "tutorials/tone-mapping/before-auto-stretch-contrast.jpg",
                    "tutorials/tone-mapping/without-bilateral-smoothing-of-mask.jpg",
                )
            ),
            note="17 original photos of the GIMP manual (its other images are filtered copies), "
            "300-768 px; GFDL-1.2+, stated in gimp-help-common's copyright file",
        ),
        Source(
            "wand-doc",
            tuple(
                f"usr/share/doc/wand-doc/html/_images/{name}.jpg"
                for name in (
                    "hummingbird",
                    "inca_tern",
                    "seam",
                    "transform",
                    "enhancement",
                    "composite-channel",
                )
            ),
            note="6 photos (birds, a street, a beach), 320-640 px; Expat",
        ),
        Source(
            "hugin-data",
            tuple(
                f"usr/share/hugin/xrc/data/help_en_EN/{name}"
                for name in (
                    "300px-Lamp_enfuse.jpg",
                    "600px-Tuebingen_Neckarfront_small15_2006-06-11.jpg",
                    "800px-C_Marchi-GrandCentral-adj.jpg",
                    "CA_fringes00.jpg",
                    "CA_tCA00.jpg",
                    "250px-Rectlinear.JPG",
                )
            ),
            note="6 photos of the Hugin help pages (a river front, a station hall); GPL-2+",
        ),
        Source(
            "puzzle-jigsaw",
            ("usr/share/puzzle-jigsaw/samples/*.jp*g",),
            note="2 photos (a cat, a tiger), 1001x648; CC0 (Pexels)",
        ),
        Source(
            "digikam-data",
            ("usr/share/digikam/about/images/body-background.jpg",),
            note="1 photo (a lake below a red hill), 4032x3024; GPL-2+",
        ),
        Source(
            "darktable",
            ("usr/share/darktable/style/image-1.jpg",),
            note="1 photo (leaves), 450x338; GPL-3+",
        ),
        Source(
            "libvips-doc",
            ("usr/share/gtk-doc/html/libvips/owl.jpg",),
            note="1 photo (an owl), 600x397; LGPL-2.1",
        ),
        Source(
            "libvigraimpex-doc",
            (
                "usr/share/doc/libvigraimpex-dev/html/bears.jpg",
                "usr/share/doc/libvigraimpex-dev/html/oi_small.jpg",
            ),
            note="2 photos (bears), 228-481 px; Expat",
        ),
        Source(
            "imagemagick-6-doc",
            ("usr/share/doc/imagemagick-6-common/html/images/bluebells_lin.jpg",),
            note="1 photo (bluebells), 384x288; ImageMagick licence, stated in "
            "imagemagick-6-common's copyright file",
        ),
        Source(
            "libvlfeat-doc",
            tuple(
                f"usr/share/doc/libvlfeat-dev/doc/images/{name}.jpg"
                for name in ("fulkerson", "lenc", "sarbortova", "vedaldi")
            ),
            note="4 small colour portraits, 120-225 px; BSD-2-clause",
        ),
        Source(
            "budgie-core",
            ("usr/share/backgrounds/budgie/default.jpg",),
            note="1 photo (the Colosseum), 3840x2160; CC0",
        ),
        Source(
            "afterstep-data",
            ("usr/share/afterstep/desktop/tiles/rose512.jpg",),
            note="1 photo (a rose), 512x384; GPL-2+",
        ),
        Source(
            "kodi-data",
            ("usr/share/kodi/addons/skin.estuary/extras/home-images/movie.jpg",),
            note="1 photo (a cinema hall), 1280x746; CC0",
        ),
        # Session 5 (issue 12: more varied photos than landscapes and animals): examples of
        # JavaScript gallery plugins, a typing tutor, Qt and Scribus examples; every file
        # looked at by eye, screenshots, renders and space images beside them left out.
        Source(
            "tuxtype-data",
            (
                "usr/share/tuxtype/images/kcas*.jpg",
                "usr/share/tuxtype/images/hidden.jpg",
                "usr/share/tuxtype/themes/*/images/photo.png",
            ),
            note="19 photos: glaciers, coasts, mountains, a seal in arms; towns of the language "
            "themes (Rome, Budapest, Seoul...), 300-1280 px; GPL-2 package, Wikimedia Commons "
            "featured pictures and NOAA/FWS public-domain photos (README_IMAGES.TXT)",
            exclude=("wolof__*",),  # a photo with a flag and a second photo pasted on it
            licence_files=("usr/share/tuxtype/images/README_IMAGES.TXT",),
        ),
        Source(
            "libjs-jquery-backstretch",
            ("usr/share/doc/libjs-jquery-backstretch/examples/*.jpg",),
            note="4 colour photos (coffee, pot holders, a leaf, a lighthouse; two in 4 sizes, "
            "prepare keeps the largest) and a near-grey dome, up to 1920 px; Expat",
        ),
        Source(
            "libjs-jquery-colorbox",
            ("usr/share/doc/libjs-jquery-colorbox/examples/content/*.jpg",),
            note="3 colour photos (a man with a baby, a man in a creek, a dachshund in 2 sizes) "
            "and 2 near-grey ones, 700-1504 px; MIT",
            exclude=("homer.jpg",),  # a drawing
        ),
        Source(
            "libjs-jquery-slides",
            (
                "usr/share/doc/libjs-jquery-slides/examples/Linking/img/slide-?.jpg",
                "usr/share/doc/libjs-jquery-slides/examples/Product/img/*.jpg",
            ),
            note="7 photos (autumn leaves, night lights, branches, the sea, a record player, a "
            "bench) and a shoe's sole; its 6 other views are near-grey, 570-960 px; Apache-2.0",
        ),
        Source(
            "qtbase5-examples",
            tuple(
                f"usr/lib/*/qt5/examples/widgets/{name}"
                for name in (
                    "graphicsview/chip/qt4logo.png",
                    "graphicsview/weatheranchorlayout/images/place.jpg",
                    "painting/affine/bg1.jpg",
                    "painting/composition/flower.jpg",
                )
            ),
            note="4 photos (people lying on a lawn, a mountain lake, a sea stack, a dahlia), "
            "300-600 px; LGPL-3 or GPL-2",
        ),
        Source(
            "qtdeclarative5-examples",
            tuple(
                f"usr/lib/*/qt5/examples/quick/{name}"
                for name in (
                    "customitems/scrollbar/pics/niagara_falls.jpg",
                    "particles/images/backgroundLeaves.jpg",
                    "touchinteraction/flickable/content/cork.jpg",
                )
            ),
            note="3 photos (Niagara Falls, fallen leaves, cork), 500-1280 px; LGPL-3 or GPL-2",
        ),
        Source(
            "scribus-data",
            tuple(
                f"usr/share/scribus/templates/{name}"
                for name in ("nl1/kites.jpg", "textbased/an_image.jpg", "textbased/author.jpg")
            ),
            note="3 photos of the templates (kites, a cyclist, a portrait), 163-504 px; GPL-2+",
        ),
        Source(
            "kalzium-data",
            ("usr/share/kalzium/data/toolpics/*.jpg",),  # its one PNG is a drawing
            note="39 photos of laboratory equipment (flasks, a burner, a balance, goggles...), "
            "mostly on a tiled floor, 60-527 px (the narrow ones are too small for prepare); "
            "GPL-2+",
        ),
        Source(
            "scribus-template",
            tuple(
                f"usr/share/scribus/templates/{name}"
                for name in (
                    "menu1/teriyaki.png",
                    "menu2/pizza.jpg",
                    "br2/nature.jpg",
                    "br2/sunset.jpg",
                    "cal2/moon.jpg",
                )
            ),
            note="5 photos of the templates: shrimp teriyaki, a pizza, a canyon, a city at "
            "dusk, the moon in a blue sky, 302-1024 px; public domain (Riku Leino)",
        ),
        # Test data of Go image libraries (their source packages keep it under testdata/).
        Source(
            "golang-golang-x-image-dev",
            tuple(
                f"usr/share/gocode/src/golang.org/x/image/testdata/{name}"
                # yellow_rose.png is a cut-out on a transparent background
                for name in ("blue-purple-pink-large.png", "go-turns-two-280x360.jpeg")
            ),
            note="2 photos (plush toys), 280-600 px; BSD-3-clause",
        ),
        Source(
            "golang-github-rwcarlsen-goexif-dev",
            ("usr/share/gocode/src/github.com/rwcarlsen/goexif/exif/sample1.jpg",),
            note="1 photo (a temple hall with a throne), 500x375; BSD-2-clause",
        ),
        Source(
            "golang-github-disintegration-gift-dev",
            ("usr/share/gocode/src/github.com/disintegration/gift/testdata/src.jpg",),
            note="1 photo (cherries on a branch), 1500x994; Expat",
        ),
        Source(
            "golang-github-disintegration-imaging-dev",
            tuple(
                f"usr/share/gocode/src/github.com/disintegration/imaging/testdata/{name}"
                for name in ("branches.png", "flowers.png")
            ),
            note="2 photos (blossoming branches, a white flower), 600x400; Expat",
        ),
        Source(
            "golang-github-bep-gowebp-dev",
            tuple(
                f"usr/share/gocode/src/github.com/bep/gowebp/test_data/images/{name}"
                for name in ("source.jpg", "sunset.jpg")
            ),
            note="2 photos (sunsets over the sea), 900-1024 px; Expat",
        ),
        Source(
            "libjs-cropper",
            ("usr/share/doc/libjs-cropper/tests/castleMed.jpg",),
            note="1 photo (a castle above daisies), 679x452; BSD",
        ),
        Source(
            "gnome-control-center-data",
            ("usr/share/pixmaps/faces/*.jpg",),  # symlinks into legacy/ (96 px) are skipped
            default=False,
            note="15 avatar photos (a cat, coffee, tomatoes, a book, headphones, a surfer...), "
            "512x512; not by default: Debian's copyright file lists CC0-1.0 among the "
            "package's licences but names no file; confirm before training on them",
        ),
        Source(
            "endless-sky-high-dpi",
            ("usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land/*.jpg",),
            default=False,
            note="the endless-sky-data scenes again at 1440x720 (136 MB download)",
        ),
    )
}
DEFAULT_SOURCES: tuple[str, ...] = tuple(name for name, s in SOURCES.items() if s.default)

# runner(args, cwd) runs one command and returns its stdout; it raises
# subprocess.CalledProcessError on a non-zero exit and FileNotFoundError for a missing program.
Runner = Callable[[Sequence[str], Path | None], str]


class FetchError(WorkFailed, RuntimeError):
    """A source that could not be fetched; the message names the package and what to do."""


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


def run_command(args: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command, return its stdout; raise CalledProcessError (with stderr) if it fails."""
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, list(args), done.stdout, done.stderr)
    return done.stdout


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


def _run(runner: Runner, args: Sequence[str], cwd: Path | None, package: str, hint: str) -> str:
    """Call the runner and turn its failures into a FetchError that says what to do."""
    try:
        return runner(args, cwd)
    except FileNotFoundError:
        raise FetchError(
            f"{package}: the program {args[0]!r} was not found; `data fetch` needs a Debian or "
            f"Ubuntu system with apt-get and dpkg-deb. {hint}"
        ) from None
    except subprocess.CalledProcessError as err:
        stderr = (err.stderr or "").strip().splitlines()
        detail = stderr[-1] if stderr else f"exit status {err.returncode}"
        raise FetchError(f"{package}: `{shlex.join(args)}` failed ({detail}). {hint}") from None


def _download(source: Source, cache: Path, runner: Runner) -> Path:
    """The package's .deb in `cache`, downloaded with apt-get unless already there."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{source.package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if found:
        logger.info("%s: using cached %s", source.package, found[-1])
        return found[-1]
    logger.info("%s: apt-get download into %s", source.package, cache)
    hint = (
        f"Check the package name, run `apt-get update` (as root) and that the Debian mirror is "
        f"reachable, or put {source.package}_*.deb into {cache} by hand."
    )
    _run(runner, ["apt-get", "download", source.package], cache, source.package, hint)
    found = sorted(cache.glob(f"{source.package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FetchError(f"{source.package}: apt-get download left no .deb in {cache}. {hint}")
    return found[-1]


def _matches(member: str, pattern: str) -> bool:
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


def _fetch_one(source: Source, dest: Path, runner: Runner) -> SourceReport:
    """Download, unpack and copy one source; the folder appears only once it is complete."""
    pkg = source.package
    deb = _download(source, dest / ".debs", runner)
    hint = f"The file {deb} may be damaged: delete it and run `data fetch` again."
    version = _run(runner, ["dpkg-deb", "-f", str(deb), "Version"], None, pkg, hint).strip()
    listing = _run(
        runner, ["bash", "-o", "pipefail", "-c", 'dpkg-deb --fsys-tarfile "$0" | tar -t', str(deb)],
        None, pkg, hint,
    )  # fmt: skip
    members, wanted, extras = _select_members(source, version, listing)
    with tempfile.TemporaryDirectory(prefix=f".{pkg}-", dir=dest) as tmp_str:
        tmp = Path(tmp_str)
        unpacked, staging = tmp / "unpacked", tmp / pkg
        unpacked.mkdir()
        staging.mkdir()
        member_list = tmp / "members.txt"
        member_list.write_text("\n".join(members[m] for m in [*wanted, *extras]) + "\n")
        _run(
            runner,
            ["bash", "-o", "pipefail", "-c",
             'dpkg-deb --fsys-tarfile "$0" | tar -x -C "$1" -T "$2"',
             str(deb), str(unpacked), str(member_list)],
            None, pkg, hint,
        )  # fmt: skip
        names, skipped, credits = _collect(source, unpacked, wanted, staging)
        if not names:
            raise FetchError(f"{pkg} {version}: the matched files hold no JPEG/PNG/WebP photo")
        scenes: dict[str, str] = {}
        if source.album_index and source.album_index in members:
            names, scenes = _apply_album_index(unpacked / source.album_index, staging, names)
        _copy_licences(source, version, unpacked, members, staging)
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
        pattern = next((p for p in source.patterns if _matches(plain, p)), None)
        if pattern is not None:
            wanted[plain] = pattern
    if not wanted:
        raise FetchError(
            f"{pkg} {version}: no file matches {', '.join(source.patterns)}; the package layout "
            "has changed, update SOURCES in pix2color/data/fetch.py"
        )
    extras = [
        m
        for m in (source.copyright_member, source.album_index, *source.licence_files)
        if m and m in members
    ]
    if source.copyright_member not in members:
        logger.warning("%s: no %s in the package; COPYRIGHT names it", pkg, source.copyright_member)
    return members, wanted, extras


def _copy_licences(
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


def _collect(
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


def _apply_album_index(
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
