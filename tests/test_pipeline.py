"""Colorizer.colorize_folder: the reader / network / writer pipeline over a folder."""

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import pix2color.inference.pipeline as inference
from pix2color import Colorizer
from pix2color.models.unet import UNetGenerator
from pix2color.photo import ImageError, save_like
from tests.conftest import real_photo


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return UNetGenerator(base_channels=8, depth=4, max_channels=16).eval()


@pytest.fixture
def folder(tmp_path):
    """Six small photos of several sizes and modes, and an unreadable file in the middle."""
    d = tmp_path / "in"
    d.mkdir()
    rgb = real_photo("coffee")  # 600x400
    for i, (w, h) in enumerate([(96, 64), (64, 96), (80, 80), (120, 90), (50, 70), (96, 64)]):
        img = Image.fromarray(rgb).resize((w, h)).convert("L" if i % 2 else "RGB")
        img.save(d / f"p{i}.{'png' if i == 2 else 'jpg'}", quality=90)
    (d / "p3_bad.jpg").write_bytes(b"not a photo")
    return d, sorted(d.iterdir())


def saver(out):
    def save(img, photo):
        return save_like(img, photo, out / photo.path.name)

    return save


def test_same_files_as_the_sequential_path_and_bad_files_get_their_line(folder, tmp_path):
    _, paths = folder
    c = Colorizer(tiny_net(), size=32)
    seq, pipe = tmp_path / "seq", tmp_path / "pipe"
    seq_errors = []
    for path, img, photo, err in c.colorize_files(paths, batch_size=2):
        if err is None:
            save_like(img, photo, seq / path.name)
        else:
            seq_errors.append(err)
    results = list(c.colorize_folder(paths, saver(pipe), batch_size=2, ahead=2))
    assert sorted(p.name for p, _, _ in results) == sorted(p.name for p in paths)
    errors = [e for _, _, e in results if e is not None]
    assert errors == seq_errors and len(errors) == 1 and "p3_bad.jpg" in errors[0]
    written = sorted(f.name for f in pipe.iterdir())
    assert written == sorted(f.name for f in seq.iterdir()) and len(written) == 6
    for name in written:
        assert (pipe / name).read_bytes() == (seq / name).read_bytes(), name


def test_a_failed_save_gets_its_line_and_the_others_are_written(folder, tmp_path):
    _, paths = folder
    out = tmp_path / "out"
    ok = saver(out)

    def save(img, photo):
        if photo.path.name == "p1.jpg":
            raise OSError("disk full")
        if photo.path.name == "p4.jpg":
            raise ImageError("p4.jpg: refused")
        return ok(img, photo)

    c = Colorizer(tiny_net(), size=32)
    results = list(c.colorize_folder(paths, save, batch_size=4))
    errors = sorted(e for _, _, e in results if e is not None)
    assert len(results) == 7 and len(errors) == 3
    assert "p1.jpg: cannot write (disk full)" in errors[0] and "p4.jpg: refused" in errors[2]
    assert sorted(f.name for f in out.iterdir()) == ["p0.jpg", "p2.png", "p3.jpg", "p5.jpg"]


class Slow(nn.Module):
    """A fake network: grey colour, after a pause, noting how far the reader had got."""

    def __init__(self, reads: list, seen: list) -> None:
        super().__init__()
        self.reads, self.seen, self.batches = reads, seen, 0

    def forward(self, x):
        self.batches += 1
        self.seen.append((self.batches, len(self.reads)))
        time.sleep(0.05)
        return torch.zeros(x.shape[0], 2, *x.shape[2:])


def test_the_reader_never_runs_more_than_a_few_photos_ahead(tmp_path, monkeypatch):
    paths = []
    for i in range(24):
        paths.append(tmp_path / f"{i:02d}.png")
        Image.new("L", (40, 30), 10 * i).save(paths[-1])
    reads, seen = [], []
    read_photo = inference.read_photo
    monkeypatch.setattr(inference, "read_photo", lambda p: reads.append(p) or read_photo(p))
    c = Colorizer(Slow(reads, seen), size=16)
    out = tmp_path / "out"
    ahead, batch = 3, 2
    results = list(c.colorize_folder(paths, saver(out), batch_size=batch, ahead=ahead))
    assert [e for _, _, e in results] == [None] * 24 and len(list(out.iterdir())) == 24
    # at batch k the network holds k * batch photos; the queue `ahead` more; the reader 1
    assert all(n <= k * batch + ahead + 1 for k, n in seen), seen
    assert max(n - k * batch for k, n in seen) >= ahead - 1  # it did read ahead meanwhile


def test_big_photos_are_held_a_few_at_a_time(tmp_path, monkeypatch):
    paths = []
    for i in range(9):
        paths.append(tmp_path / f"{i:02d}.png")
        Image.new("L", (40, 30), 20 * i).save(paths[-1])  # 1200 pixels each
    reads, seen = [], []
    read_photo = inference.read_photo
    monkeypatch.setattr(inference, "read_photo", lambda p: reads.append(p) or read_photo(p))
    c = Colorizer(Slow(reads, seen), size=16)
    results = list(
        c.colorize_folder(paths, saver(tmp_path / "out"), batch_size=4, max_pixels=2500)
    )  # two photos fit: batches of at most 2 instead of 4, and no deadlock
    assert [e for _, _, e in results] == [None] * 9
    assert len(list((tmp_path / "out").iterdir())) == 9 and len(seen) >= 5


def test_an_unexpected_error_is_raised_and_the_threads_end(folder, tmp_path):
    _, paths = folder

    def save(img, photo):
        raise RuntimeError("bug")

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="bug"):
        list(Colorizer(tiny_net(), size=32).colorize_folder(paths, save, ahead=1))
    assert threading.active_count() == before


def test_an_error_while_listing_the_photos_is_raised(folder, tmp_path):
    _, paths = folder

    def listing():
        yield from paths[:3]
        raise PermissionError("cannot list")

    before = threading.active_count()
    c = Colorizer(tiny_net(), size=32)
    with pytest.raises(PermissionError, match="cannot list"):
        list(c.colorize_folder(listing(), saver(tmp_path / "out"), ahead=1))
    assert threading.active_count() == before


def test_stopping_early_ends_the_threads(tmp_path):
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(np.full((30, 40), 20 * i, np.uint8)).save(paths[-1])
    before = threading.active_count()
    results = Colorizer(tiny_net(), size=16).colorize_folder(
        paths, saver(tmp_path / "out"), batch_size=2, ahead=1
    )
    next(r for r in results if r[2] is None)
    results.close()
    assert threading.active_count() == before
