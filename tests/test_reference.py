"""A reference photo's palette on the automatic colour (reference.py), with every model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.cli import main
from pix2color.color.lab import rgb_to_lab
from pix2color.color.rows import rgb8_to_L
from pix2color.errors import UsageError
from pix2color.guide.points import Point
from pix2color.guide.reference import Palette, ReferencePhotoError, palette_of, transfer
from pix2color.inference.colorizer import Colorizer
from tests.conftest import real_photo

BLUE = np.zeros((40, 60, 3), np.uint8) + np.array([40, 80, 200], np.uint8)


def _blue_sky(seed: int = 0) -> np.ndarray:
    """A blue reference with some texture (a flat colour has no spread)."""
    rng = np.random.default_rng(seed)
    return np.clip(BLUE.astype(int) + rng.integers(-25, 25, BLUE.shape), 0, 255).astype(np.uint8)


def test_a_blue_reference_makes_a_neutral_region_bluer():
    L = torch.linspace(30, 80, 32 * 32).reshape(1, 32, 32)
    ab = torch.randn(2, 32, 32) * 2  # nearly grey automatic colour
    L_before = L.clone()
    moved = transfer(ab, L, palette_of(_blue_sky()))
    assert torch.equal(L, L_before) and moved.shape == ab.shape  # ab only: L is never touched
    blue_b = rgb_to_lab(BLUE[:1, :1] / 255.0)[0, 0, 2]  # about -55: b < 0 is blue
    assert blue_b < -30
    assert moved[1].mean() < ab[1].mean() - 8  # b went toward blue (at most MAX_SHIFT)
    assert transfer(ab, L, palette_of(_blue_sky()), strength=0) is ab  # strength 0: unchanged


def test_transfer_follows_luminance_bands():
    """A reference blue where bright and brown where dark moves each part its own way."""
    ref = np.zeros((40, 40, 3), np.uint8)
    ref[:20] = (120, 170, 240)  # bright blue
    ref[20:] = (90, 50, 20)  # dark brown
    ref = np.clip(ref + np.random.default_rng(0).integers(-10, 10, ref.shape), 0, 255)
    L = torch.cat([torch.full((1, 8, 16), 75.0), torch.full((1, 8, 16), 25.0)], dim=1)
    moved = transfer(torch.zeros(2, 16, 16), L, palette_of(ref.astype(np.uint8)))
    assert moved[1, :8].mean() < -5  # bright part: blue (b < 0)
    assert moved[1, 8:].mean() > 5  # dark part: brown (b > 0)


def test_palette_round_trips_through_json():
    p = palette_of(_blue_sky(), name="sky.jpg")
    q = Palette.from_json(p.to_json())
    assert q.name == "sky.jpg"
    np.testing.assert_allclose(q.mean, p.mean, atol=1e-3)
    np.testing.assert_allclose(q.std, p.std, atol=1e-3)
    assert torch.allclose(q.histogram, p.histogram, atol=1e-5)


def test_a_colourless_or_unreadable_reference_is_refused_clearly(model_dir, tmp_path):
    c = Colorizer.from_pretrained(model_dir, size=32, backend="torch")
    with pytest.raises(ReferencePhotoError, match="no colour.*give a colour photo"):
        c.with_reference(Image.fromarray(real_photo("astronaut")).convert("L"))
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    with pytest.raises(UsageError, match="reference photo: .*notes.jpg.*give a colour photo"):
        c.with_reference(bad)
    with pytest.raises(UsageError, match="missing.jpg"):
        c.with_reference(tmp_path / "missing.jpg")


def test_every_model_takes_a_reference_and_keeps_the_photos_luminance(model_dir):
    c = Colorizer.from_pretrained(model_dir, size=32, backend="torch")
    assert not c.guided
    gray = Image.fromarray(real_photo("astronaut")).convert("L").resize((48, 40))
    plain = np.asarray(c(gray)).astype(int)
    blue = np.asarray(c(gray, reference=Image.fromarray(_blue_sky()))).astype(int)
    assert np.abs(blue - plain).max() > 10
    assert (blue[..., 2] - blue[..., 0]).mean() > (plain[..., 2] - plain[..., 0]).mean() + 5
    # the photo's L is joined as always (only ab moved): a mild reference keeps it to rounding
    mild = Image.fromarray(np.clip(_blue_sky().astype(int) // 4 + 96, 0, 255).astype(np.uint8))
    L_in = rgb8_to_L(np.repeat(np.asarray(gray)[..., None], 3, axis=2))
    out = np.asarray(c(gray, reference=mild))
    assert np.median(np.abs(rgb8_to_L(out) - L_in)) < 1.0
    # with_reference: the same network, every later photo coloured like the reference
    like = c.with_reference(Image.fromarray(_blue_sky()))
    assert like.G is c.G and np.array_equal(np.asarray(like(gray)), blue)
    assert c.reference is None  # the original stays automatic


def test_points_go_on_top_of_the_reference(model_dir):
    c = Colorizer.from_pretrained(model_dir, size=32, backend="torch")
    gray = Image.fromarray(real_photo("astronaut")).convert("L").resize((48, 40))
    ref = Image.fromarray(_blue_sky())
    blue = np.asarray(c(gray, reference=ref)).astype(int)
    both = np.asarray(c(gray, points=[Point(10, 10, (240, 20, 20), 2)], reference=ref))
    diff = np.abs(both.astype(int) - blue).sum(axis=2)
    assert diff[10, 10] > 30  # the point is red on top of the reference's colour
    assert diff[35, 45] < diff[10, 10]  # far away, the reference's colour stays


def test_cli_reference_with_an_automatic_model(model_dir, tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(real_photo("astronaut")).convert("L").resize((48, 40)).save(photo)
    ref = tmp_path / "sky.png"
    Image.fromarray(_blue_sky()).save(ref)
    base = ["colorize", str(photo), "--model", str(model_dir), "--size", "32", "-q"]
    assert main([*base, "-o", str(tmp_path / "auto")]) == 0
    assert main([*base, "-o", str(tmp_path / "ref"), "--reference", str(ref)]) == 0
    auto = np.asarray(Image.open(tmp_path / "auto" / "p.png")).astype(int)
    blue = np.asarray(Image.open(tmp_path / "ref" / "p.png")).astype(int)
    assert (blue[..., 2] - blue[..., 0]).mean() > (auto[..., 2] - auto[..., 0]).mean() + 5


def test_cli_refuses_a_grey_or_missing_reference(model_dir, tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray(real_photo("astronaut")).convert("L").resize((48, 40)).save(photo)
    base = ["colorize", str(photo), "--model", str(model_dir), "--size", "32", "-o", str(tmp_path)]
    assert main([*base, "--reference", str(photo)]) == 2
    assert "no colour" in capsys.readouterr().err
    assert main([*base, "--reference", str(tmp_path / "nope.jpg")]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "Traceback" not in err
