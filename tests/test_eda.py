"""`data eda` on a prepared folder (with manifest.csv) and on a plain folder of photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from pix2color.cli import main, parse_args
from pix2color.data.eda import eda

PLOTS = ("sizes", "rgb_histogram", "ab_histogram", "colorfulness", "counts", "samples")


def small(rgb: np.ndarray, width: int = 120) -> Image.Image:
    img = Image.fromarray(rgb)
    return img.resize((width, round(img.height * width / img.width)))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A folder shaped like prepare's output: splits, subfolders and a manifest."""
    root = tmp_path_factory.mktemp("prepared")
    rows = []
    photos = [
        ("train", "people", "astronaut", skdata.astronaut()),
        ("train", "animals", "chelsea", skdata.chelsea()),
        ("train", "animals", "coffee", skdata.coffee()),
        ("val", "people", "rocket", skdata.rocket()),
        ("test", "animals", "cat", skdata.chelsea()[:, ::-1]),
    ]
    for split, source, name, rgb in photos:
        path = Path(split) / source / f"{name}.jpg"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        img = small(rgb)
        img.save(root / path, quality=95)
        rows.append({"split": split, "path": path.as_posix(), "source": source,
                     "width": img.width, "height": img.height})  # fmt: skip
    # A stray photo outside the manifest must not be counted.
    small(skdata.coffee()).save(root / "stray.jpg")
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_prepared_folder_counts_by_source_and_split(prepared, tmp_path):
    summary = eda(prepared, tmp_path / "eda")
    assert summary["from_manifest"] is True
    assert summary["photos"] == 5
    assert summary["by_source"] == {"animals": 3, "people": 2}
    assert summary["by_split"] == {"test": 1, "train": 3, "val": 1}
    assert summary["by_source_split"]["people"] == {"train": 1, "val": 1}
    assert summary["width"]["min"] == summary["width"]["max"] == 120
    assert summary["colorfulness"]["min"] > 20
    assert len(summary["rgb_mean"]) == len(summary["rgb_std"]) == 3
    assert all(0 < m < 255 for m in summary["rgb_mean"])
    saved = json.loads((tmp_path / "eda" / "summary.json").read_text())
    assert saved == summary
    for name in PLOTS:
        path = tmp_path / "eda" / f"{name}.png"
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 300, name


def test_plain_folder_skips_its_own_output_and_reports_unreadable(tmp_path):
    folder = tmp_path / "photos"
    (folder / "cats").mkdir(parents=True)
    small(skdata.chelsea()).save(folder / "cats" / "chelsea.png")
    small(skdata.coffee(), 200).save(folder / "coffee.jpg")
    (folder / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    first = eda(folder, folder / "eda")
    second = eda(folder, folder / "eda")  # the plots now in folder/eda are not photos to study
    for summary in (first, second):
        assert summary["photos"] == 2
        assert summary["by_source"] == {"": 1, "cats": 1}
        assert [u["file"] for u in summary["unreadable"]] == ["cats/broken.jpg"]
    assert first["rgb_mean"] == second["rgb_mean"]  # sampled pixels are reproducible


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no photos found"):
        eda(tmp_path, tmp_path / "eda")


def test_command_writes_to_dir_eda_by_default(prepared, capsys, tmp_path):
    assert main(["data", "eda", str(prepared), "--output", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "studied 5 photos" in out and str(tmp_path / "e") in out
    assert parse_args(["data", "eda", "somewhere"]).output is None
    # a usage error (exit 2): the folder given does not exist
    assert main(["data", "eda", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no such folder" in err[0]
