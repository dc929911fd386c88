"""`pix2color evaluate`: both forms on a tiny prepared folder, its report, JSON, leakage guard."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.cli import main
from pix2color.data.dataset import centre_square
from pix2color.data.prepare import MANIFEST_COLUMNS
from pix2color.data.stats import colorfulness, dhash
from pix2color.eval.evaluate import METRIC_KEYS, OTHER, OWN, evaluate, reference_index
from pix2color.eval.testset import TestSet as TruthSet  # not a test class for pytest
from pix2color.inference.colorizer import Colorizer
from pix2color.models.io import save_pretrained
from pix2color.photo import photo_from_image
from tests.conftest import PHOTOS, ROOT, real_photo

SIZE = 32
TEST_PHOTOS = ("coffee", "chelsea", "rocket", "motorcycle_left")


pytestmark = [pytest.mark.metric_weights, pytest.mark.usefixtures("one_torch_thread")]


def run(*argv: str) -> tuple[int, str, str]:
    """Run `pix2color evaluate ARGV` -> (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["evaluate", *argv, "--quiet"])
    return code, out.getvalue(), err.getvalue()


def _row(root: Path, split: str, rel: str) -> dict[str, str]:
    rgb = np.asarray(Image.open(root / rel).convert("RGB"))
    return {
        "split": split, "path": rel, "source": "skimage", "original": rel,
        "width": rgb.shape[1], "height": rgb.shape[0],
        "sha256": hashlib.sha256((root / rel).read_bytes()).hexdigest(),
        "dhash": f"{dhash(rgb):016x}", "colorfulness": f"{colorfulness(rgb):.2f}",
    }  # fmt: skip


def write_manifest(root: Path, splits=("train", "val", "test")) -> None:
    """manifest.csv as `data prepare` writes it, for the photos now in the splits' folders."""
    rows = [
        _row(root, split, p.relative_to(root).as_posix())
        for split in splits
        for p in sorted((root / split).rglob("*.png"))
    ]
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def make_prepared(root: Path, n_test: int) -> Path:
    """train/ from the astronaut, test/ from other photos: no scene in two splits."""
    rng = np.random.default_rng(1)
    astronaut = real_photo("astronaut")
    for split, n in (("train", 3), ("val", 1), ("test", n_test)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            rgb = astronaut if split != "test" else real_photo(TEST_PHOTOS[i % len(TEST_PHOTOS)])
            h, w = rgb.shape[:2]
            y, x = rng.integers(0, h - 120), rng.integers(0, w - 160)
            crop = Image.fromarray(rgb[y : y + 120, x : x + 160]).resize((56, 42))
            crop.save(root / split / f"{split}{i}.png")
    write_manifest(root)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random generator, saved as a shipped model would be."""
    from pix2color.train import build_models
    from pix2color.train.recipe import load_config

    torch.manual_seed(0)
    G, _ = build_models(load_config(ROOT / "configs" / "tiny.toml").model)
    return save_pretrained(G, tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def data_run(tmp_path_factory, model_dir):
    """One `evaluate --data` run over 4 test photos, shared by the tests that read its output."""
    root = make_prepared(tmp_path_factory.mktemp("photos"), n_test=4)
    out = tmp_path_factory.mktemp("eval")
    code, stdout, stderr = run(
        "--data", str(root), "--models", str(model_dir), "--size", str(SIZE),
        "--output", str(out / "report"), "--json", str(out / "metrics.json"), "--save-images",
    )  # fmt: skip
    return root, out, code, stdout, stderr


def test_data_form_writes_the_whole_report(data_run, model_dir):
    root, out, code, stdout, stderr = data_run
    assert code == 0, stderr
    report = json.loads((out / "report" / "report.json").read_text())
    assert list(report["models"]) == ["grey", str(model_dir)]
    assert report["n"] == 4 and report["fid_reliable"] is False
    assert "prefer KID" in report["notes"][0] and report["protocol"]["leakage_checked"]
    md = (out / "report" / "report.md").read_text()
    assert "| grey (input) |" in md and f"| {model_dir} |" in md and "LPIPS" in md
    assert md.count("| grey (input) |") == 1 and "In-source" not in md  # no test_in: one table
    assert "in_source" not in report and f"- {model_dir} against grey: LPIPS" in md
    assert "| grey (input) |" in stdout
    for name in ("metrics.png", "comparison_01.png"):
        Image.open(out / "report" / name).verify()
    sheet = Image.open(out / "report" / "comparison_01.png")
    assert sheet.width == 3 * 96  # input | the model | truth, cells of 96 px
    with (out / "report" / "per_image.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * 4


def test_json_has_the_required_keys_for_every_model(data_run, model_dir):
    _, out, code, _, _ = data_run
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"grey", str(model_dir)}
    for m in metrics.values():
        assert set(METRIC_KEYS) <= set(m)
        assert all(isinstance(m[k], float) and np.isfinite(m[k]) for k in METRIC_KEYS)


def test_grey_baseline_is_the_input_itself(data_run):
    root, out, _, _, _ = data_run
    gray = json.loads((out / "metrics.json").read_text())["grey"]
    assert gray["colorfulness"] == pytest.approx(0.0, abs=1e-9)
    assert gray["delta_cf"] == pytest.approx(gray["colorfulness_truth"])
    assert gray["ciede2000"] > 0 and gray["lpips"] > 0
    saved = np.asarray(Image.open(out / "report" / "images" / "grey" / "test0.png"))
    truth = centre_square(np.asarray(Image.open(root / "test" / "test0.png")), SIZE)
    expected = np.asarray(Image.fromarray(truth).convert("L"))
    assert (saved == expected[..., None]).all()


def test_scores_what_users_get_from_the_colorizer(data_run, model_dir):
    root, out, _, _, _ = data_run
    truth = centre_square(np.asarray(Image.open(root / "test" / "test3.png")), SIZE)
    gray_photo = photo_from_image(Image.fromarray(truth).convert("L"))
    expected = Colorizer.from_pretrained(model_dir, size=SIZE).colorize_photo(gray_photo)
    folder = next(p for p in (out / "report" / "images").iterdir() if "tiny" in p.name)
    scored = Image.open(folder / "test3.png")
    assert np.array_equal(np.asarray(scored), np.asarray(expected))


def test_pred_truth_form_gives_the_same_figures(data_run, model_dir, tmp_path):
    _, out, _, _, _ = data_run
    images = out / "report" / "images"
    pred = tmp_path / "mytool"
    shutil.copytree(next(p for p in images.iterdir() if "tiny" in p.name), pred)
    for f in pred.glob("*.png"):  # another tool's naming: same stem, other format
        Image.open(f).save(f.with_suffix(".bmp"))
        f.unlink()
    code, stdout, stderr = run(
        "--pred", str(pred), "--truth", str(images / "truth"),
        "--output", str(tmp_path / "report"), "--json", str(tmp_path / "m.json"),
    )  # fmt: skip
    assert code == 0, stderr
    again = json.loads((tmp_path / "m.json").read_text())
    before = json.loads((out / "metrics.json").read_text())
    assert set(again) == {"grey", "mytool"}
    for k in METRIC_KEYS:
        assert again["mytool"][k] == pytest.approx(before[str(model_dir)][k], rel=1e-5, abs=1e-9)
        assert again["grey"][k] == pytest.approx(before["grey"][k], rel=1e-5, abs=1e-9)


def test_pred_folder_missing_photos_is_refused(data_run, tmp_path):
    _, out, _, _, _ = data_run
    truth = out / "report" / "images" / "truth"
    pred = tmp_path / "partial"
    pred.mkdir()
    shutil.copy(truth / "test0.png", pred / "test0.png")
    code, _, stderr = run("--pred", str(pred), "--truth", str(truth), "-o", str(tmp_path / "r"))
    # a usage error (exit 2): the folders cannot be compared as given
    assert code == 2 and stderr.startswith("error: ") and "Traceback" not in stderr
    assert "no prediction for 3 of the 4" in stderr and "test1" in stderr


def test_leakage_is_refused_naming_the_files(tmp_path, model_dir):
    root = make_prepared(tmp_path / "photos", n_test=3)
    shutil.copy(root / "test" / "test0.png", root / "train" / "copy.png")  # the same file
    near = Image.open(root / "test" / "test1.png").resize((84, 63), Image.Resampling.LANCZOS)
    near.save(root / "train" / "bigger.png")  # the same scene, other pixels
    write_manifest(root)
    code, _, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "32",
                          "--output", str(tmp_path / "out"))  # fmt: skip
    # a usage error (exit 2): the folder cannot be used as given; nothing is scored
    assert code == 2 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 2 test photo(s)")
    assert "test/test0.png = train/copy.png (same file)" in lines[0]
    assert "test/test1.png = train/bigger.png (same scene" in lines[0]
    assert "--allow-leakage" in lines[0] and "test/test2.png" not in lines[0]
    assert not (tmp_path / "out" / "report.md").exists()

    code, _, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "32",
                          "--output", str(tmp_path / "out"), "--allow-leakage")  # fmt: skip
    assert code == 0, stderr
    assert "WARNING: --allow-leakage" in stderr and "INFLATED" in stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["protocol"]["leakage"]) == 2
    assert "leakage was allowed" in (tmp_path / "out" / "report.md").read_text()


def test_usage_errors_are_one_line(tmp_path, model_dir):
    code, _, err = run("--data", str(tmp_path), "--models", "nope", "-o", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: model 'nope' not found")
    code, _, err = run("--pred", str(tmp_path), "-o", str(tmp_path / "o"))
    assert code == 2 and "--pred and --truth go together" in err
    code, _, err = run("--data", str(tmp_path), "--models", str(model_dir), "--size", "16",
                       "-o", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "LPIPS needs 32" in err
    code, _, err = run("--data", str(tmp_path / "none"), "--models", str(model_dir),
                       "-o", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "no test photos" in err and len(err.strip().splitlines()) == 1


def test_prepared_folders_pass_the_leakage_guard(tmp_path):
    """`data prepare` keeps each scene in one split, by the rule the guard checks with."""
    from pix2color.data.dataset import split_files
    from pix2color.data.leakage import find_leaks
    from pix2color.data.prepare import prepare

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right"):
        Image.fromarray(real_photo(name)).save(raw / f"{name}.png")
    out = tmp_path / "photos"
    prepare(raw, out, max_side=256, val_fraction=0.3, test_fraction=0.3)
    held_out = [f for split in ("val", "test") for f in _files_or_none(split_files, out, split)]
    assert held_out and find_leaks(out, held_out) == []


def _files_or_none(split_files, root, split):
    try:
        return split_files(root, split)
    except FileNotFoundError:
        return []


def make_source_split(root: Path) -> Path:
    """A folder with test (3 photos of unseen sources) and test_in (2 held-out scenes)."""
    make_prepared(root, n_test=3)
    (root / "test_in").mkdir()
    rng = np.random.default_rng(2)
    cat = real_photo("chelsea")
    for i in range(2):
        y, x = rng.integers(0, cat.shape[0] - 120), rng.integers(0, cat.shape[1] - 160)
        Image.fromarray(cat[y : y + 120, x : x + 160]).resize((56, 42)).save(
            root / "test_in" / f"in{i}.png"
        )
    write_manifest(root, ("train", "val", "test", "test_in"))
    return root


def test_source_split_folder_reports_out_of_source_and_in_source(tmp_path, model_dir):
    """A folder with test (unseen sources) and test_in (held-out scenes of training sources)."""
    root = make_source_split(tmp_path / "photos")
    out = tmp_path / "report"
    code, stdout, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "32",
                               "-o", str(out), "--json", str(tmp_path / "m.json"))  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 3 and report["in_source"]["n"] == 2
    assert set(report["in_source"]["models"]) == {"grey", str(model_dir)}
    assert report["in_source"]["sheets"] == ["comparison_in_01.png"]
    md = (out / "report.md").read_text()
    assert "## Out-of-source test: 3 photos" in md and "## In-source test: 2 photos" in md
    assert md.count("| grey (input) |") == 2
    (line,) = [x for x in md.splitlines() if x.startswith(f"- {model_dir} against grey")]
    assert "out of source" in line and "in source" in line and "LPIPS" in line
    assert "in-source test (2 held-out scenes" in stdout and f"{model_dir} against grey" in stdout
    assert "† KID on 3 images" in md  # too few to trust, and said so
    with (out / "per_image.csv").open() as f:
        splits = [r["split"] for r in csv.DictReader(f)]
    assert splits.count("test") == 2 * 3 and splits.count("test_in") == 2 * 2
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["grey"]["in_source"]["n"] == 2


def test_split_val_scores_the_validation_photos_for_choosing(tmp_path, model_dir):
    root = make_prepared(tmp_path / "photos", n_test=3)
    coffee = real_photo("coffee")
    for i in range(1, 5):  # more validation photos than test photos, so the count tells
        Image.fromarray(coffee[i * 40 : i * 40 + 120, :160]).resize((56, 42)).save(
            root / "val" / f"val{i}.png"
        )
    write_manifest(root)
    n_val = len(list((root / "val").glob("*.png")))
    out = tmp_path / "report"
    code, _, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "32",
                          "--split", "val", "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == n_val == 5 and report["protocol"]["split"] == "val"


def test_hints_curve_scores_each_number_of_simulated_points(tmp_path, model_dir):
    root = make_prepared(tmp_path / "photos", n_test=2)
    out = tmp_path / "report"
    code, stdout, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "32",
                               "--hints", "0,5,50", "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    hints = report["protocol"]["hints"]
    assert hints["counts"] == [0, 5, 50]
    rows = hints["rows"][str(model_dir)]
    psnr = [report["models"][rows[str(n)]]["psnr"] for n in (0, 5, 50)]
    assert psnr[0] < psnr[1] < psnr[2]  # points from the truth bring the truth's colour
    assert "Colour points" in (out / "report.md").read_text()
    assert "colour points (simulated from the truth)" in stdout


# ---------------------------------------------------------------- --reference
def _squares(n: int, size: int = 64) -> TruthSet:
    """n real photos' centre squares: the truth of a reference evaluation."""
    truth = [centre_square(real_photo(PHOTOS[i]), size) for i in range(n)]
    return TruthSet([f"p{i}" for i in range(n)], truth)


def test_reference_scores_the_right_half_only():
    test = _squares(3)
    rng = np.random.default_rng(0)
    pred = [np.clip(t.astype(int) + rng.integers(-40, 40, t.shape), 0, 255).astype(np.uint8)
            for t in test.truth]  # fmt: skip
    left_changed = [p.copy() for p in pred]
    right_changed = [p.copy() for p in pred]
    for a, b in zip(left_changed, right_changed, strict=True):
        a[:, :32] = rng.integers(0, 256, a[:, :32].shape)  # what the reference shows
        b[:, 40:] = 255 - b[:, 40:]
    rows = {"pred": pred, "left changed": left_changed, "right changed": right_changed}
    ev = evaluate(test, rows, protocol={"description": "-"}, right_half_only=True, progress=False)
    m = ev.report["models"]
    for k in METRIC_KEYS:
        assert m["left changed"][k] == pytest.approx(m["pred"][k], rel=1e-6, abs=1e-9), k
    assert m["right changed"]["psnr"] < m["pred"]["psnr"] - 1
    assert ev.test.truth[0].shape == (64, 32, 3) and ev.images["pred"][0].shape == (64, 32, 3)
    assert np.array_equal(ev.test.truth[1], test.truth[1][:, 32:])
    refs = ev.references  # each photo's own left half, and another photo's
    assert np.array_equal(refs["own reference"][2], test.truth[2][:, :32])
    assert np.array_equal(refs["other reference"][2], test.truth[0][:, :32])


def test_the_other_reference_is_always_another_photo():
    for n in (2, 3, 72):
        others = [reference_index(k, n, OTHER) for k in range(n)]
        assert sorted(others) == list(range(n)) and all(j != k for k, j in enumerate(others))
        assert [reference_index(k, n, OWN) for k in range(n)] == list(range(n))


def test_a_reference_half_without_colour_leaves_the_automatic_colour(model_dir):
    from pix2color.eval.evaluate import WithReference, colorize_set, colorless_references

    test = _squares(2)
    gray_left = test.truth[1].copy()
    gray_left[:, :32] = test.gray[1][:, :32, None]  # its left half: black and white
    test = TruthSet(test.names, [test.truth[0], gray_left])
    assert colorless_references(test) == ["p1"]
    c = Colorizer.from_pretrained(model_dir, size=64)
    auto = colorize_set(c, test.gray)
    own = WithReference(c, OWN).colorize_set(test)
    assert np.array_equal(own[1], auto[1])  # no palette to give: the automatic colour
    assert not np.array_equal(own[0], auto[0])  # photo 0's own palette does move its colour


def test_reference_rows_report_and_sheet(tmp_path, model_dir):
    root = make_prepared(tmp_path / "photos", n_test=3)
    out = tmp_path / "report"
    code, stdout, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "64",
                               "--reference", "-o", str(out), "--json", str(tmp_path / "m.json"),
                               "--save-images")  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    m = str(model_dir)
    rows = [m, f"{m} +own palette", f"{m} +other's palette"]
    assert list(report["models"]) == ["grey", *rows]
    assert report["protocol"]["reference"]["rows"][m] == dict(
        zip(("automatic", "own palette", "other photo's palette"), rows, strict=True)
    )
    assert set(json.loads((tmp_path / "m.json").read_text())) == {"grey", *rows}
    md = (out / "report.md").read_text()
    assert "own palette from a different crop" in md and "right half" in md
    assert f"| {m} | own palette |" in md and "| grey | grey input (the floor) |" in md
    assert "stretched" in md  # what FID and KID on halves are worth
    assert "own palette" in stdout
    truth = np.asarray(Image.open(out / "images" / "truth" / "test0.png"))
    assert truth.shape == (64, 32, 3)  # the scored images are the right halves
    # the own reference | other's | input | the 3 rows | truth, cells of 96 px
    assert Image.open(out / "comparison_01.png").width == 7 * 96
    with (out / "per_image.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4 * 3


def test_reference_with_an_in_source_split_scores_both_on_halves(tmp_path, model_dir):
    root = make_source_split(tmp_path / "photos")
    out = tmp_path / "report"
    code, _, stderr = run("--data", str(root), "--models", str(model_dir), "--size", "64",
                          "--reference", "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    rows = {"grey", str(model_dir), f"{model_dir} +own palette", f"{model_dir} +other's palette"}
    assert set(report["models"]) == set(report["in_source"]["models"]) == rows
    assert report["in_source"]["sheets"] == ["comparison_in_01.png"]
    md = (out / "report.md").read_text()
    assert "In-source test:" in md and md.count("| grey | grey input (the floor) |") == 2
    # both splits' sheets show the references: 2 of them | input | 3 rows | truth
    assert Image.open(out / "comparison_in_01.png").width == 7 * 96


def test_reference_usage_errors_are_one_line(tmp_path, model_dir):
    root = make_prepared(tmp_path / "photos", n_test=1)
    out = str(tmp_path / "o")
    code, _, err = run("--data", str(root), "--models", "nope", "--reference", "-o", out)
    assert code == 2 and err.startswith("error: model 'nope' not found")
    code, _, err = run("--data", str(root), "--models", str(model_dir), "--reference", "--hints",
                       "-o", out)  # fmt: skip
    assert code == 2 and "--reference and --hints are measured apart" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run("--pred", out, "--truth", out, "--reference", "-o", out)
    assert code == 2 and "--reference goes with --data and --models" in err
    code, _, err = run("--data", str(root), "--models", str(model_dir), "--size", "48",
                       "--reference", "-o", out)  # fmt: skip
    assert code == 2 and "--size 48 is too small for --reference" in err
    code, _, err = run("--data", str(root), "--models", str(model_dir), "--size", "64",
                       "--reference", "-o", out)  # fmt: skip
    assert code == 2 and "needs 2 or more photos" in err and "it has 1" in err
