"""`pix2color colorize --hints`: colour points from files, and every bad hints file."""

import json

import numpy as np
import pytest
from PIL import Image

from pix2color.cli import main
from tests.conftest import real_photo


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for name, photo in (("a.jpg", "coffee"), ("b.png", "chelsea"), ("sub/c.png", "astronaut")):
        Image.fromarray(real_photo(photo)).convert("L").resize((96, 64)).save(d / name)
    return d


def _write(path, points):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"points": points}))
    return path


def _colorize(*args, model_dir):
    return main(["colorize", *map(str, args), "--model", str(model_dir), "--size", "32"])


def test_one_photo_with_a_hints_file(folder, model_dir, tmp_path, capsys):
    hints = _write(tmp_path / "a.json", [{"x": 40, "y": 30, "color": "#20c040", "radius": 8}])
    assert _colorize(folder / "a.jpg", "-o", tmp_path / "plain", model_dir=model_dir) == 0
    code = _colorize(folder / "a.jpg", "-o", tmp_path / "out", "--hints", hints,
                     model_dir=model_dir)  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and f"1 colour point(s) from {hints}" in out
    plain = np.asarray(Image.open(tmp_path / "plain" / "a.jpg"), np.float32)
    pointed = np.asarray(Image.open(tmp_path / "out" / "a.jpg"), np.float32)
    assert pointed.shape == plain.shape == (64, 96, 3)
    assert pointed[..., 1].mean() > plain[..., 1].mean() + 2  # greener


def test_a_folder_with_a_bad_hints_file_colours_the_others(folder, model_dir, tmp_path, capsys):
    hints = tmp_path / "hints"
    _write(hints / "a.json", [{"x": 4, "y": 3, "color": "#2050c0"}])
    _write(
        hints / "b.json",
        [{"x": 4, "y": 3, "color": "#2050c0"}, {"x": 4, "y": 3, "color": "#zz0000"}],
    )
    _write(hints / "typo.json", [])
    code = _colorize(folder, "-o", tmp_path / "out", "--hints", hints, model_dir=model_dir)
    captured = capsys.readouterr()
    assert code == 1
    assert f"{hints / 'b.json'}: points[1].color: '#zz0000' is not a colour" in captured.err
    assert (tmp_path / "out" / "a.jpg").exists() and (tmp_path / "out" / "sub" / "c.png").exists()
    assert not (tmp_path / "out" / "b.png").exists()
    assert f"automatic colour: no {hints / 'sub' / 'c.json'}" in captured.out
    assert f"1 colour point(s) from {hints / 'a.json'}" in captured.out
    assert f"{hints / 'typo.json'} matches no photo" in captured.out
    assert "coloured 2 photo(s)" in captured.out and "1 failed" in captured.out


@pytest.mark.parametrize(
    "content, message",
    [
        (json.dumps({"points": [{"x": 96, "y": 3, "color": "#2050c0"}]}),
         r"points[0]: (96, 3) is outside the photo (96x64"),
        ('{"points": [{"x": 4, "y": 3, "color": "#2050c0"}', "not valid JSON"),
        ('{"points": [{"x": 4, "color": "#2050c0"}]}', "points[0]: the field 'y' is missing"),
    ],
)  # fmt: skip
def test_a_bad_hints_file_for_one_photo(folder, model_dir, tmp_path, capsys, content, message):
    hints = tmp_path / "h.json"
    hints.write_text(content)
    code = _colorize(folder / "a.jpg", "-o", tmp_path / "out", "--hints", hints,
                     model_dir=model_dir)  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and f"{folder / 'a.jpg'}: not coloured: {hints}" in err and message in err
    assert not (tmp_path / "out" / "a.jpg").exists()


def test_a_hints_file_for_several_photos_or_a_missing_one_is_a_usage_error(
    folder, model_dir, tmp_path, capsys
):
    hints = _write(tmp_path / "h.json", [])
    assert _colorize(folder, "-o", tmp_path / "o", "--hints", hints, model_dir=model_dir) == 2
    assert "give a folder" in capsys.readouterr().err
    missing = tmp_path / "nope"
    assert _colorize(folder, "-o", tmp_path / "o", "--hints", missing, model_dir=model_dir) == 2
    assert "no such file or folder" in capsys.readouterr().err
