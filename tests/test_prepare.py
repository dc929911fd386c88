"""`data prepare` on real photos from scikit-image plus generated problem cases."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from pix2color.cli import main
from pix2color.data.dedupe import Candidate as _Candidate
from pix2color.data.dedupe import group_scenes as _group_scenes
from pix2color.data.prepare import prepare
from pix2color.data.report import PrepareReport
from pix2color.data.split import split_of
from pix2color.data.stats import SCENE_HAMMING, Look, colorfulness, dhash, hamming


def save(rgb: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kwargs)
    return path


def resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def exif_rotated_jpeg(upright: np.ndarray, path: Path) -> None:
    """A JPEG whose pixels lie on their side, with EXIF orientation 6 (turn 90 deg clockwise)."""
    img = Image.fromarray(np.rot90(upright, 1))  # stored turned 90 deg anticlockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, quality=95, exif=exif)


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """A photo folder with every case prepare must handle."""
    root = tmp_path_factory.mktemp("raw")
    astronaut, chelsea, coffee, rocket = (
        skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket(),
    )  # fmt: skip
    save(astronaut, root / "people" / "astronaut.png")
    save(resized(astronaut, (256, 256)), root / "people" / "astronaut_small.jpg", quality=90)
    save(chelsea, root / "animals" / "chelsea.jpg", quality=95)
    save(rocket, root / "rocket.jpg", quality=95)  # top level: source ""
    exif_rotated_jpeg(coffee, root / "animals" / "coffee_rotated.jpg")
    gray = np.repeat(np.asarray(Image.fromarray(chelsea).convert("L"))[..., None], 3, axis=2)
    save(gray[:, ::-1], root / "animals" / "grey_cat.png")
    save(astronaut[100:160, 200:300], root / "people" / "tiny.png")
    buffer = io.BytesIO()
    Image.fromarray(rocket).save(buffer, format="JPEG")
    (root / "broken.jpg").write_bytes(buffer.getvalue()[:2000])  # truncated
    (root / "garbage.png").write_bytes(b"definitely not a png" * 10)
    (root / "people" / "COPYRIGHT").write_text("Astronaut: NASA, public domain\n")
    (root / "people" / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def prepared(src, tmp_path_factory) -> tuple[Path, PrepareReport, list[dict]]:
    out = tmp_path_factory.mktemp("photos")
    report = prepare(src, out, max_side=512, val_fraction=0.3, test_fraction=0.3)
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return out, report, rows


def test_drops_each_problem_with_its_reason(prepared):
    _, report, rows = prepared
    dropped = {reason: sorted(d["file"] for d in files) for reason, files in report.dropped.items()}
    assert dropped == {
        "unreadable": ["broken.jpg", "garbage.png"],
        "too_small": ["people/tiny.png"],
        "transparent": [],
        "near_grey": ["animals/grey_cat.png"],
        "duplicate": ["people/astronaut_small.jpg"],
    }
    assert sorted(r["original"] for r in rows) == [
        "animals/chelsea.jpg", "animals/coffee_rotated.jpg", "people/astronaut.png", "rocket.jpg",
    ]  # fmt: skip
    assert report.found == 9
    assert sum(report.kept.values()) == 4


def test_duplicate_keeps_the_largest_and_says_which(prepared):
    _, report, _ = prepared
    (dup,) = report.dropped["duplicate"]
    assert "people/astronaut.png" in dup["why"] and "512x512" in dup["why"]


def test_exif_rotated_photo_is_written_upright(prepared):
    out, _, rows = prepared
    (row,) = [r for r in rows if r["original"] == "animals/coffee_rotated.jpg"]
    assert (int(row["width"]), int(row["height"])) == (512, 341)  # coffee is 600x400, landscape
    written = np.asarray(Image.open(out / row["path"]), dtype=np.float32)
    expected = resized(skdata.coffee(), (512, 341)).astype(np.float32)
    assert np.abs(written - expected).mean() < 6  # upright; a sideways photo differs by ~50


def test_manifest_columns_paths_and_hashes(prepared):
    out, _, rows = prepared
    for row in rows:
        assert list(row) == [
            "split", "path", "source", "original", "width", "height", "sha256", "dhash",
            "colorfulness",
        ]  # fmt: skip
        path = out / row["path"]
        assert row["path"].startswith(row["split"] + "/") and path.suffix == ".jpg"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        with Image.open(path) as img:
            assert img.mode == "RGB"
            assert img.size == (int(row["width"]), int(row["height"]))
            assert max(img.size) <= 512
        assert float(row["colorfulness"]) >= 8.0
        assert len(row["dhash"]) == 16
    sources = {r["original"]: r["source"] for r in rows}
    assert sources["rocket.jpg"] == "" and sources["animals/chelsea.jpg"] == "animals"
    (astro,) = [r for r in rows if r["original"] == "people/astronaut.png"]
    assert astro["path"] == f"{astro['split']}/people/astronaut.jpg"


def test_report_json_and_licences(prepared):
    out, report, _ = prepared
    saved = json.loads((out / "prepare_report.json").read_text())
    assert saved["kept"] == report.kept
    assert saved["dropped_counts"]["unreadable"] == 2
    assert saved["layout"] == "folder"
    assert (out / "licenses" / "people" / "COPYRIGHT").read_text().startswith("Astronaut")


def test_rerun_gives_identical_manifest(prepared, src, tmp_path):
    out, _, _ = prepared
    prepare(src, tmp_path, max_side=512, val_fraction=0.3, test_fraction=0.3)
    assert (tmp_path / "manifest.csv").read_text() == (out / "manifest.csv").read_text()


def test_split_depends_only_on_the_photo(prepared, src, tmp_path):
    # Without the other photos, each photo still lands in the same split.
    out, _, rows = prepared
    solo = tmp_path / "solo"
    save(skdata.chelsea(), solo / "animals" / "chelsea.jpg", quality=95)
    prepare(solo, tmp_path / "out", max_side=512, val_fraction=0.3, test_fraction=0.3)
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    (before,) = [r for r in rows if r["original"] == "animals/chelsea.jpg"]
    assert row["split"] == before["split"]


def test_no_hash_group_spans_two_splits(prepared):
    _, _, rows = prepared
    for a in rows:
        for b in rows:
            if hamming(int(a["dhash"], 16), int(b["dhash"], 16)) <= SCENE_HAMMING:
                assert a["split"] == b["split"], (a["original"], b["original"])


def _candidate(name: str, dhash_value: int, thumb: np.ndarray, size=(400, 300)) -> _Candidate:
    t = thumb - thumb.mean()
    look = Look(dhash_value, size[0] / size[1], t / np.linalg.norm(t))
    return _Candidate(name, "", size[0], size[1], 30.0, look)


def test_two_shots_of_one_scene_share_a_split():
    rng = np.random.default_rng(0)
    base = rng.normal(size=256).astype(np.float32)
    other = base + 0.4 * rng.normal(size=256).astype(np.float32)  # correlation ~0.93
    # Two hashes 3 bits apart whose own keys fall in different splits.
    h1 = 0x0123456789ABCDEF
    h2 = next(
        h1 ^ (0b111 << s)
        for s in range(60)
        if split_of(f"{h1 ^ (0b111 << s):016x}", 0.3, 0.3) != split_of(f"{h1:016x}", 0.3, 0.3)
    )
    kept = _group_scenes(
        [_candidate("a.jpg", h1, base), _candidate("b.jpg", h2, other)],
        PrepareReport("src", "out", "folder"),
    )
    assert [c.original for c, _ in kept] == ["a.jpg", "b.jpg"]  # both kept: not copies
    assert kept[0][1] == kept[1][1]  # one split key for the scene


def test_photos_named_as_one_scene_by_the_source_share_a_split(tmp_path):
    src = tmp_path / "src"
    photos = {"astronaut.png": skdata.astronaut(), "coffee.png": skdata.coffee()}
    for name, rgb in photos.items():
        save(rgb, src / "album" / name)
    (src / "album" / "SOURCE.json").write_text(
        json.dumps({"scenes": {"astronaut.png": "holiday", "coffee.png": "holiday"}})
    )
    # Fractions under which the two photos, judged alone, would land in different splits.
    own = [f"{dhash(rgb):016x}" for rgb in photos.values()]
    fractions = next(
        (v, t)
        for v in (0.1, 0.2, 0.3, 0.4)
        for t in (0.1, 0.2, 0.3, 0.4)
        if split_of(own[0], v, t) != split_of(own[1], v, t)
    )
    prepare(src, tmp_path / "out", val_fraction=fractions[0], test_fraction=fractions[1])
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[0]["split"] == rows[1]["split"]


def test_split_fractions_and_determinism():
    keys = [f"{i:016x}" for i in range(20_000)]
    splits = [split_of(k, 0.1, 0.2) for k in keys]
    assert splits == [split_of(k, 0.1, 0.2) for k in keys]
    assert abs(splits.count("val") / len(keys) - 0.1) < 0.01
    assert abs(splits.count("test") / len(keys) - 0.2) < 0.01


def test_paired_color_gray_layout_uses_color_only(tmp_path, caplog):
    src = tmp_path / "paired"
    for name, photo in (("astronaut.png", skdata.astronaut()), ("rocket.png", skdata.rocket())):
        save(photo, src / "color" / name)
        save(np.asarray(Image.fromarray(photo).convert("L")), src / "gray" / name)
    with caplog.at_level("INFO", logger="pix2color.data.prepare"):
        report = prepare(src, tmp_path / "out", max_side=256)
    assert report.layout == "paired"
    assert "paired" in caplog.text
    assert report.found == 2 and sum(report.kept.values()) == 2
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        assert sorted(r["original"] for r in csv.DictReader(f)) == ["astronaut.png", "rocket.png"]


def test_transparent_cutout_is_dropped(tmp_path):
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., :3] = skdata.astronaut()[:200, :200]
    rgba[50:150, 50:150, 3] = 255  # only the middle is opaque
    save(rgba, tmp_path / "src" / "cutout.png")
    save(skdata.chelsea(), tmp_path / "src" / "chelsea.png")
    report = prepare(tmp_path / "src", tmp_path / "out")
    assert [d["file"] for d in report.dropped["transparent"]] == ["cutout.png"]


def test_bad_arguments_are_explained(tmp_path, src):
    with pytest.raises(ValueError, match="leaves nothing to train on"):
        prepare(src, tmp_path / "out", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="must not be the source folder"):
        prepare(src, src)
    with pytest.raises(ValueError, match="no such folder"):
        prepare(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no photos found"):
        prepare(tmp_path / "empty", tmp_path / "out")


def test_colorfulness_matches_the_formula():
    gray = np.full((10, 10, 3), 128, np.uint8)
    assert colorfulness(gray) == 0.0
    red_green = np.zeros((2, 2, 3), np.uint8)
    red_green[0, :, 0] = 255  # two red pixels
    red_green[1, :, 1] = 255  # two green pixels
    # rg = +-255: std 255, mean 0; yb = 127.5 everywhere: std 0, mean 127.5
    assert colorfulness(red_green) == pytest.approx(255 + 0.3 * 127.5)
    assert colorfulness(skdata.coffee()) > colorfulness(skdata.chelsea()) > 20


def test_dhash_is_scale_invariant_and_discriminates():
    astronaut = skdata.astronaut()
    assert hamming(dhash(astronaut), dhash(resized(astronaut, (200, 200)))) <= 2
    assert hamming(dhash(astronaut), dhash(skdata.coffee())) > SCENE_HAMMING
    assert 0 <= dhash(astronaut) < 2**64


def test_command_prints_summary_and_fails_cleanly(src, tmp_path, capsys):
    assert main(["data", "prepare", str(src), str(tmp_path / "o"), "--max-side=256"]) == 0
    out = capsys.readouterr().out
    assert "kept 4" in out and "unreadable 2" in out and "duplicate 1" in out
    # a usage error (exit 2): the option cannot be used as given
    assert main(["data", "prepare", str(src), str(tmp_path), "--val", "0.9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_no_usable_photo_fails_and_writes_nothing(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jpg").write_bytes(b"not a jpeg" * 10)
    (raw / "b.png").write_bytes(b"not a png either")
    save(skdata.astronaut()[:50, :50], raw / "small.png")
    out = tmp_path / "out"
    assert main(["data", "prepare", str(raw), str(out)]) == 1
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if "error" in line]  # not the progress bar
    assert len(err) == 1 and err[0].startswith("error: ") and "no usable photo" in err[0]
    assert "among the 3 found" in err[0] and "2 unreadable, 1 too small" in err[0]
    assert "--min-side" in err[0] and "wrote" not in captured.out
    assert not any(out.glob("*"))  # no empty splits, manifest or report
