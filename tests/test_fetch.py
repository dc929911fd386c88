"""`data fetch` end to end on tiny real .deb files built here, with apt-get replaced by a copy."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from pix2color.cli import main
from pix2color.data.deb import FetchError, run_command
from pix2color.data.extract import PHOTO_SUFFIXES
from pix2color.data.fetch import SourceReport, check_allowed, fetch
from pix2color.data.sources import SOURCES
from tests.test_rcc import make_rcc

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None or shutil.which("tar") is None,
    reason="needs dpkg-deb and tar (a Debian or Ubuntu system)",
)


def photo_bytes(fmt: str, size: tuple[int, int] = (40, 20), seed: int = 0) -> bytes:
    """A small random colour image encoded as `fmt` ("JPEG", "PNG", "WEBP")."""
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    return buffer.getvalue()


def build_deb(folder: Path, package: str, files: dict[str, bytes], version: str = "1.0-1") -> Path:
    """A real .deb made with dpkg-deb --build, holding `files` ({"usr/...": bytes})."""
    root = folder / f"{package}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Test <test@example.org>\nDescription: test package\n"
    )
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    deb = folder / f"{package}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


class FakeApt:
    """A runner whose `apt-get download NAME` copies a prepared .deb; other commands really run."""

    def __init__(self, debs: dict[str, Path], fail: Sequence[str] = ()):
        self.debs, self.fail = debs, set(fail)
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], cwd: Path | None = None) -> str:
        self.calls.append(list(args))
        if list(args[:2]) == ["apt-get", "download"]:
            name = args[2]
            if name in self.fail or name not in self.debs:
                raise subprocess.CalledProcessError(
                    100, list(args), "", f"E: Unable to locate package {name}\n"
                )
            shutil.copyfile(self.debs[name], Path(cwd) / f"{name}_1.0-1_all.deb")
            return ""
        return run_command(args, cwd)


COPYRIGHT = b"Files: *\nCopyright: the photographers\nLicense: CC-BY-SA-4.0\n"


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("debs")
    land = "usr/share/games/endless-sky/images/land"
    rcc_blob = make_rcc(
        {
            "gcompris/src/activities/explore_world_animals/resource/animals/giraffe.webp":
                photo_bytes("WEBP", seed=1),
            "gcompris/src/activities/explore_world_animals/resource/animals/README":
                b"Copyright: Jane Doe\nLicense: CC-BY-SA-4.0\nFiles:\ngiraffe.webp\n",
            "gcompris/src/activities/explore_world_animals/resource/map.svg": b"<svg/>",
        },
        version=2,
        compress=frozenset(
            {"gcompris/src/activities/explore_world_animals/resource/animals/README"}
        ),
    )  # fmt: skip
    index = (
        b'<?xml version="1.0"?><KPhotoAlbum><images>'
        b'<image file="turned.jpg" angle="90" label="plain"/><image file="plain.jpg"/>'
        b"</images></KPhotoAlbum>"
    )
    walls = "usr/share/lxqt/wallpapers"
    return {
        "lxqt-themes": build_deb(
            folder,
            "lxqt-themes",
            {
                f"{walls}/fog.jpg": photo_bytes("JPEG", seed=4),
                f"{walls}/flowers.png": photo_bytes("PNG", seed=5),
                f"{walls}/triangles.png": photo_bytes("PNG", seed=6),  # a render: not listed
                f"{walls}/License": b"CC-BY-SA-3.0, photos by stefonarch\n",
                "usr/share/doc/lxqt-themes/copyright": COPYRIGHT,
            },
        ),
        "endless-sky-data": build_deb(
            folder,
            "endless-sky-data",
            {
                f"{land}/beach0.jpg": photo_bytes("JPEG", seed=2),
                f"{land}/city1.jpg": photo_bytes("JPEG", seed=3),
                f"{land}/notes.txt": b"not a photo",
                "usr/share/games/endless-sky/images/other/ship.jpg": photo_bytes("JPEG"),
                "usr/share/doc/endless-sky-data/copyright": COPYRIGHT,
            },
            version="0.9.8-1.2",
        ),
        "gcompris-qt-data": build_deb(
            folder,
            "gcompris-qt-data",
            {
                "usr/share/gcompris-qt/rcc/explore_world_animals.rcc": rcc_blob,
                "usr/share/gcompris-qt/rcc/chess.rcc": make_rcc({"a.webp": b"x"}),
                "usr/share/doc/gcompris-qt-data/copyright": COPYRIGHT,
            },
        ),
        "scratch": build_deb(
            folder,
            "scratch",
            {
                "usr/share/scratch/Media/Backgrounds/Nature/lake.jpg": photo_bytes("JPEG"),
                "usr/share/scratch/Media/Backgrounds/Nature/woods.gif": photo_bytes("GIF"),
                "usr/share/scratch/Media/Backgrounds/Indoors/room1.jpg": photo_bytes("JPEG"),
                "usr/share/doc/scratch/copyright": COPYRIGHT,
            },
        ),
        "renpy-demo": build_deb(
            folder,
            "renpy-demo",
            {
                "usr/share/games/renpy/demo/game/images/bg cave.jpg": photo_bytes("JPEG", seed=7),
                "usr/share/games/renpy/demo/game/images/bg panorama.webp": photo_bytes("WEBP"),
                "usr/share/doc/renpy-demo/copyright": COPYRIGHT,
            },
        ),
        # Its doc folder is a link to gimp-help-common's: no copyright file of its own.
        "gimp-help-en": build_deb(
            folder,
            "gimp-help-en",
            {
                "usr/share/gimp/2.0/help/en/images/filters/examples/taj_orig.png": photo_bytes(
                    "PNG", seed=8
                ),
                "usr/share/gimp/2.0/help/en/images/filters/examples/taj-blur.png": photo_bytes(
                    "PNG", seed=9
                ),
            },
        ),
        "kphotoalbum": build_deb(
            folder,
            "kphotoalbum",
            {
                "usr/share/kphotoalbum/demo/turned.jpg": photo_bytes("JPEG", (40, 20)),
                "usr/share/kphotoalbum/demo/plain.jpg": photo_bytes("JPEG", (40, 20)),
                "usr/share/kphotoalbum/demo/CategoryImages/face.jpg": photo_bytes("JPEG"),
                "usr/share/kphotoalbum/demo/index.xml": index,
                "usr/share/doc/kphotoalbum/copyright": COPYRIGHT,
            },
        ),
    }


def test_fetches_photos_licence_and_metadata(tmp_path, debs):
    runner = FakeApt(debs)
    (report,) = fetch(tmp_path, ["endless-sky-data"], runner=runner)
    folder = tmp_path / "endless-sky-data"
    assert report == SourceReport(
        "endless-sky-data", "fetched", folder, 2, "0.9.8-1.2", skipped=report.skipped
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "COPYRIGHT", "SOURCE.json", "beach0.jpg", "city1.jpg",
    ]  # fmt: skip
    assert (folder / "COPYRIGHT").read_bytes() == COPYRIGHT
    meta = json.loads((folder / "SOURCE.json").read_text())
    assert meta["package"] == "endless-sky-data"
    assert meta["version"] == "0.9.8-1.2"
    assert meta["files"] == 2
    assert meta["names"] == ["beach0.jpg", "city1.jpg"]
    assert meta["date"]
    assert (tmp_path / ".debs" / "endless-sky-data_1.0-1_all.deb").is_file()
    # Nothing but the photo folder, the cache and no leftovers of the temporary unpacking.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".debs", "endless-sky-data"]


def test_second_run_skips_complete_sources_without_any_command(tmp_path, debs):
    fetch(tmp_path, ["endless-sky-data"], runner=FakeApt(debs))
    runner = FakeApt(debs)
    (report,) = fetch(tmp_path, ["endless-sky-data"], runner=runner)
    assert report.status == "complete" and report.files == 2
    assert runner.calls == []


def test_cached_deb_is_reused_and_incomplete_folder_is_redone(tmp_path, debs):
    fetch(tmp_path, ["endless-sky-data"], runner=FakeApt(debs))
    (tmp_path / "endless-sky-data" / "beach0.jpg").unlink()  # no longer complete
    runner = FakeApt(debs)
    (report,) = fetch(tmp_path, ["endless-sky-data"], runner=runner)
    assert report.status == "fetched"
    assert (tmp_path / "endless-sky-data" / "beach0.jpg").is_file()
    assert not [c for c in runner.calls if c[0] == "apt-get"]


def test_gcompris_photos_come_out_of_the_rcc_with_credits(tmp_path, debs):
    (report,) = fetch(tmp_path, ["gcompris-qt-data"], runner=FakeApt(debs))
    folder = tmp_path / "gcompris-qt-data"
    assert report.files == 1
    photo = folder / "explore_world_animals__animals__giraffe.webp"
    assert photo.read_bytes() == photo_bytes("WEBP", seed=1)
    assert "Jane Doe" in (folder / "CREDITS.txt").read_text()
    assert any("map.svg" in s for s in report.skipped)
    assert not any("chess" in p.name for p in folder.iterdir())


def test_drawings_and_gifs_are_left_out_and_kphotoalbum_is_turned_upright(tmp_path, debs):
    reports = fetch(tmp_path, ["scratch", "kphotoalbum"], runner=FakeApt(debs))
    assert [r.files for r in reports] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "scratch").glob("*.*g")) == ["Nature__lake.jpg"]
    kpa = tmp_path / "kphotoalbum"
    assert sorted(p.name for p in kpa.glob("*.*g")) == ["plain.jpg", "turned.png"]
    with Image.open(kpa / "turned.png") as img:
        assert img.size == (20, 40)  # angle="90": the 40x20 photo stands upright
    with Image.open(kpa / "plain.jpg") as img:
        assert img.size == (40, 20)
    meta = json.loads((kpa / "SOURCE.json").read_text())
    # Labels (the default label is the stem), keyed by the final file names.
    assert meta["scenes"] == {"turned.png": "plain", "plain.jpg": "plain"}


def test_photos_named_one_by_one_keep_their_names_and_the_package_licence(tmp_path, debs):
    (report,) = fetch(tmp_path, ["lxqt-themes"], runner=FakeApt(debs))
    folder = tmp_path / "lxqt-themes"
    assert report.files == 2
    assert sorted(p.name for p in folder.iterdir()) == [
        "COPYRIGHT", "LICENCE-License", "SOURCE.json", "flowers.png", "fog.jpg",
    ]  # fmt: skip
    assert "stefonarch" in (folder / "LICENCE-License").read_text()


def test_file_names_with_spaces_are_flattened_and_unlisted_files_left_out(tmp_path, debs):
    (report,) = fetch(tmp_path, ["renpy-demo"], runner=FakeApt(debs))
    names = sorted(p.name for p in (tmp_path / "renpy-demo").iterdir())
    assert report.files == 1
    assert names == ["COPYRIGHT", "SOURCE.json", "bg_cave.jpg"]  # the panorama is a render


def test_package_without_copyright_file_says_where_its_licence_is(tmp_path, debs):
    (report,) = fetch(tmp_path, ["gimp-help-en"], runner=FakeApt(debs))
    folder = tmp_path / "gimp-help-en"
    assert report.files == 1 and (folder / "taj_orig.png").is_file()
    text = (folder / "COPYRIGHT").read_text()
    assert "ships no copyright file" in text and "GFDL-1.2+" in text and "gimp-help-common" in text


def test_every_source_is_well_formed():
    for name, source in SOURCES.items():
        check_allowed(name)  # none is reserved
        assert source.package == name and source.note, name
        for pattern in source.patterns:
            assert not pattern.startswith(("/", "./")) and not pattern.endswith("/"), pattern
            last = PurePosixPath(pattern)
            assert last.name == "*" or last.suffix.lower() in PHOTO_SUFFIXES | {".rcc", ".jp*g"}, (
                pattern
            )


def test_one_failing_source_does_not_lose_the_others(tmp_path, debs):
    runner = FakeApt(debs, fail=["scratch"])
    reports = fetch(tmp_path, ["scratch", "endless-sky-data"], runner=runner)
    failed, fetched = reports
    assert failed.status == "failed" and not failed.ok
    assert "scratch" in failed.error and "Unable to locate package" in failed.error
    assert "apt-get update" in failed.error  # says what to do
    assert fetched.ok and fetched.files == 2
    assert not (tmp_path / "scratch").exists()


def test_missing_program_is_a_clear_error(tmp_path, debs):
    def no_apt(args, cwd=None):
        raise FileNotFoundError(args[0])

    (report,) = fetch(tmp_path, ["kphotoalbum"], runner=no_apt)
    assert report.status == "failed"
    assert "kphotoalbum" in report.error and "'apt-get' was not found" in report.error


@pytest.mark.parametrize("name", ["mate-backgrounds", "lomiri-wallpapers-focal", "opencv-doc"])
def test_reserved_packages_are_refused_before_any_download(tmp_path, name):
    runner = FakeApt({})
    with pytest.raises(ValueError, match="reserved for the independent evaluation"):
        fetch(tmp_path, ["endless-sky-data", name], runner=runner)
    assert runner.calls == []


def test_unknown_source_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown source; choose from endless-sky-data"):
        fetch(tmp_path, ["no-such-package"], runner=FakeApt({}))


def test_fetch_error_is_a_runtime_error():
    assert issubclass(FetchError, RuntimeError)


def test_command_refuses_reserved_package_with_one_error_line(tmp_path, capsys):
    # a usage error (exit 2): refused before anything is downloaded
    assert main(["data", "fetch", str(tmp_path), "--sources", "tuxpaint-data"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: tuxpaint-data") and "reserved" in err[0]


def test_corrupt_rcc_fails_only_its_source(tmp_path, debs):
    broken = build_deb(
        tmp_path,
        "gcompris-qt-data",
        {"usr/share/gcompris-qt/rcc/erase.rcc": b"qres" + b"\x00\x00\x00\x03" + b"\xff" * 12},
    )
    runner = FakeApt({**debs, "gcompris-qt-data": broken})
    failed, fetched = fetch(tmp_path / "raw", ["gcompris-qt-data", "kphotoalbum"], runner=runner)
    assert failed.status == "failed" and failed.error.startswith("gcompris-qt-data: ")
    assert "erase.rcc" in failed.error and "corrupt" in failed.error
    assert fetched.ok and fetched.files == 2
    assert not (tmp_path / "raw" / "gcompris-qt-data").exists()
    assert not list((tmp_path / "raw").glob(".gcompris*"))  # the temporary folder is gone


def test_a_wildcard_folder_names_the_photo_and_a_licence_file_is_kept(tmp_path):
    """tuxtype-data: one photo per language theme, all named photo.png; one theme's is left out."""
    themes = "usr/share/tuxtype/themes"
    deb = build_deb(
        tmp_path,
        "tuxtype-data",
        {
            f"{themes}/italian/images/photo.png": photo_bytes("PNG", seed=7),
            f"{themes}/korean/images/photo.png": photo_bytes("PNG", seed=8),
            f"{themes}/wolof/images/photo.png": photo_bytes("PNG", seed=9),  # excluded
            f"{themes}/wolof/images/map.png": photo_bytes("PNG", seed=10),  # not listed
            "usr/share/tuxtype/images/kcas0.jpg": photo_bytes("JPEG", seed=11),
            "usr/share/tuxtype/images/README_IMAGES.TXT": b"from Wikimedia Commons\n",
            "usr/share/doc/tuxtype-data/copyright": COPYRIGHT,
        },
    )
    (report,) = fetch(tmp_path / "raw", ["tuxtype-data"], runner=FakeApt({"tuxtype-data": deb}))
    folder = tmp_path / "raw" / "tuxtype-data"
    photos = sorted(json.loads((folder / "SOURCE.json").read_text())["names"])
    assert photos == ["italian__images__photo.png", "kcas0.jpg", "korean__images__photo.png"]
    assert report.skipped == [f"{themes}/wolof/images/photo.png (a drawing, excluded by name)"]
    assert (folder / "LICENCE-README_IMAGES.TXT").read_text() == "from Wikimedia Commons\n"
