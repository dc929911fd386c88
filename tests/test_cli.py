"""`pix2color colorize` as a user runs it: real photos in every mode, and every bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.cli import main, parse_args
from pix2color.color.lab import rgb_to_lab
from tests.conftest import real_photo


def _exif_rotated_jpeg(path, rgb):
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(path, exif=exif.tobytes(), quality=90)


@pytest.fixture
def photos(tmp_path):
    """A folder of real photos in every mode the issue names (and a nested subfolder)."""
    d = tmp_path / "in"
    (d / "nested").mkdir(parents=True)
    astro, coffee, cat = real_photo("astronaut"), real_photo("coffee"), real_photo("chelsea")
    Image.fromarray(coffee).convert("L").save(d / "grey.jpg", quality=92)
    Image.fromarray(cat).save(d / "colour.png")
    rgba = Image.fromarray(astro).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "alpha.png")
    g16 = (np.asarray(Image.fromarray(cat).convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(g16).save(d / "sixteen.png")  # mode I;16
    Image.fromarray(coffee).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(astro).convert("P").save(d / "palette.png")
    Image.fromarray(coffee).convert("L").save(d / "nested" / "scan.tif")
    _exif_rotated_jpeg(d / "nested" / "rotated.jpg", real_photo("rocket"))  # 640x427 stored
    return d


def _bad_files(d):
    good = d / "colour.png"
    (d / "truncated.jpg").write_bytes((d / "grey.jpg").read_bytes()[:3000])
    (d / "notes.jpg").write_text("this is not a photo")
    (d / "empty.png").write_bytes(b"")
    frames = [
        Image.fromarray(np.roll(real_photo("chelsea"), 40 * i, axis=1)).convert("P")
        for i in range(3)
    ]  # different frames: Pillow merges identical ones
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])
    return good


def test_every_mode_is_coloured_at_full_size_in_its_own_format(photos, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["colorize", str(photos), "-o", str(out), "--model", str(model_dir), "--size", "64"]
    )
    assert code == 0, capsys.readouterr().err
    cases = {
        "grey.jpg": ("JPEG", (600, 400), "RGB"),
        "colour.png": ("PNG", (451, 300), "RGB"),
        "alpha.png": ("PNG", (512, 512), "RGBA"),
        "sixteen.png": ("PNG", (451, 300), "RGB"),
        "cmyk.jpg": ("JPEG", (600, 400), "RGB"),
        "palette.png": ("PNG", (512, 512), "RGB"),
        "nested/scan.tif": ("TIFF", (600, 400), "RGB"),
        "nested/rotated.jpg": ("JPEG", (427, 640), "RGB"),  # upright: EXIF applied
    }
    for name, (fmt, size, mode) in cases.items():
        img = Image.open(out / name)
        assert (img.format, img.size, img.mode) == (fmt, size, mode), name
    alpha = np.asarray(Image.open(out / "alpha.png"))[..., 3]
    assert (alpha == 128).all()
    # luminance preserved: the output's L is the grey input's L
    L_in = rgb_to_lab(np.asarray(Image.open(photos / "nested/scan.tif").convert("RGB")))[..., 0]
    L_out = rgb_to_lab(np.asarray(Image.open(out / "nested/scan.tif")))[..., 0]
    assert np.abs(L_in - L_out).mean() < 0.5
    assert "coloured 8 photo(s)" in capsys.readouterr().out


def test_bad_files_are_reported_and_the_rest_still_done(photos, model_dir, tmp_path, capsys):
    _bad_files(photos)
    out = tmp_path / "out"
    argv = ["colorize", str(photos), str(tmp_path / "missing.png"), "-o", str(out),
            "--model", str(model_dir), "--size", "64"]  # fmt: skip
    code = main(argv)
    cap = capsys.readouterr()
    assert code == 1
    errors = [line for line in cap.err.splitlines() if line.startswith("error: ")]
    expected = {
        "truncated.jpg": "truncated",
        "notes.jpg": "not an image",
        "empty.png": "not an image",
        "anim.gif": "animated",
        "missing.png": "no such file",
    }
    for name, reason in expected.items():
        hits = [e for e in errors if name in e]
        assert len(hits) == 1 and reason in hits[0], (name, errors)
    assert "Traceback" not in cap.err
    assert len(list(out.rglob("*.*"))) == 8  # every good photo was still written
    assert "coloured 8 photo(s)" in cap.out and "5 failed" in cap.out


def test_unknown_model_is_a_clear_usage_error(photos, tmp_path, capsys):
    code = main(["colorize", str(photos / "grey.jpg"), "-o", str(tmp_path), "--model", "nope"])
    assert code == 2
    assert "model 'nope' not found" in capsys.readouterr().err


def test_never_overwrites_the_input(photos, model_dir, capsys):
    before = (photos / "grey.jpg").read_bytes()
    code = main(
        ["colorize", str(photos / "grey.jpg"), "-o", str(photos), "--model", str(model_dir)]
    )
    assert code == 1 and "overwrite the input" in capsys.readouterr().err
    assert (photos / "grey.jpg").read_bytes() == before


def test_console_script_runs(photos, model_dir, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pix2color.cli", "colorize", str(photos / "grey.jpg"),
         "-o", str(tmp_path / "o"), "--model", str(model_dir), "--size", "64"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "o" / "grey.jpg").size == (600, 400)


def test_a_process_that_ends_while_the_join_warms_up_exits_cleanly():
    # a Colorizer starts loading the join's compiled code in a thread (warm_join); a process
    # that ends right after (e.g. a refused option) must exit normally. While that thread was a
    # daemon, ending under numba's compiler aborted about 2 runs in 3 ("terminate called"): the
    # interpreter must wait for it, so it must not be a daemon (checked while it runs)
    code = (
        "import threading\n"
        "from pix2color.inference.join import warm_join\n"
        "warm_join()\n"
        "t = [t for t in threading.enumerate() if t.name == 'pix2color-warm-join']\n"
        "assert t and not t[0].daemon, 'the warm-up thread must not be a daemon'\n"
    )
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0 and "terminate" not in r.stderr, (r.returncode, r.stderr[-300:])


def test_train_overrides_may_follow_the_options(capsys):
    args = parse_args(["train", "r.toml", "train.epochs=5", "--resume", "train.lr_g=1e-4", "-q"])
    assert args.resume and args.quiet
    assert args.overrides == ["train.epochs=5", "train.lr_g=1e-4"]
    with pytest.raises(SystemExit):
        parse_args(["train", "r.toml", "--resume", "--nope"])
    assert "unrecognized arguments: --nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # only `train` takes overrides
        parse_args(["models", "train.epochs=5"])


def test_jpegs_are_written_at_quality_95_also_when_exif_rotated(photos, model_dir, tmp_path):
    out = tmp_path / "o"
    for name in ("grey.jpg", "nested/rotated.jpg"):
        assert (
            main(["colorize", str(photos / name), "-o", str(out), "--model", str(model_dir)]) == 0
        )
        written = Image.open(out / Path(name).name)
        reference = tmp_path / f"q95-{Path(name).name}"  # what Pillow writes at quality 95
        written.save(reference, quality=95)
        assert written.quantization == Image.open(reference).quantization, name


def test_every_input_not_coloured_gets_its_line(photos, model_dir, tmp_path, capsys, monkeypatch):
    import os

    (photos / "nested" / "loop").symlink_to(photos)  # a link back up: a loop
    (photos / "broken.jpg").symlink_to(tmp_path / "gone.jpg")  # a dangling link
    (photos / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # root reads every folder, so refuse one the way a chmod would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code = main(["colorize", str(photos), "-o", str(tmp_path / "o"), "--model", str(model_dir)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "broken.jpg: a broken link" in err
    assert "locked: cannot read this folder (Permission denied)" in err
    assert "loop: a link back to" in err
    assert "coloured 8 photo(s)" in out and "3 failed" in out  # the 8 readable photos still done


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(photos, model_dir, capsys):
    target = photos / "colour.png"
    code = main(["colorize", str(photos), "-o", str(target), "--model", str(model_dir)])
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err


def test_an_output_folder_inside_the_input_is_not_searched(photos, model_dir, capsys):
    args = ["colorize", str(photos), "-o", str(photos / "coloured"), "--model", str(model_dir)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0  # the second run does not colour the first run's results again
    second = capsys.readouterr().out
    assert "coloured 8 photo(s)" in first and "coloured 8 photo(s)" in second
    assert "is not searched" in second


def test_a_permission_error_says_so(photos, model_dir, capsys, monkeypatch):
    import PIL.Image

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(PIL.Image, "open", refuse)
    code = main(["colorize", str(photos / "grey.jpg"), "-o", str(photos / "o"), "--model",
                 str(model_dir)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "permission denied" in err and "truncated" not in err


def test_skip_existing_continues_an_interrupted_job(photos, model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["colorize", str(photos), "-o", str(out), "--model", str(model_dir)]
    assert main(args) == 0
    (out / "grey.jpg").unlink()  # as if the run had stopped before this photo
    kept = (out / "colour.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*args, "--skip-existing"]) == 0
    out_text = capsys.readouterr().out
    assert "coloured 1 photo(s)" in out_text and "7 already there" in out_text
    assert (out / "grey.jpg").is_file() and (out / "colour.png").stat().st_mtime_ns == kept


def test_two_workers_share_a_folder_without_overlap(photos, model_dir, tmp_path):
    out = tmp_path / "o"
    base = [sys.executable, "-m", "pix2color.cli", "colorize", str(photos), "-o", str(out),
            "--model", str(model_dir), "--size", "64", "--shard"]  # fmt: skip
    workers = [
        subprocess.Popen([*base, f"{i}/2"], stdout=subprocess.PIPE, text=True) for i in (0, 1)
    ]
    outs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    counts = [int(o.split("coloured ")[1].split(" ")[0]) for o in outs]
    assert sorted(counts) == [4, 4]  # 8 photos, none coloured twice
    assert len([p for p in out.rglob("*") if p.is_file()]) == 8


def test_a_bad_shard_is_a_usage_error(photos, model_dir, capsys):
    for bad in ("2/2", "x", "1/0"):
        code = main(["colorize", str(photos), "-o", str(photos / "o"), "--shard", bad])
        assert code == 2 and "--shard" in capsys.readouterr().err


def test_a_folder_shows_photos_per_second_and_time_left(photos, model_dir, tmp_path, capsys):
    threads = torch.get_num_threads()
    argv = ["colorize", str(photos / "nested"), "--model", str(model_dir), "--size", "64"]
    assert main([*argv, "-o", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "2/2" in err and "photo/s" in err and "<00:00" in err  # elapsed<left, rate
    assert torch.get_num_threads() == threads  # the network's thread count is put back
    assert main([*argv, "-o", str(tmp_path / "b"), "-q", "--threads", "1"]) == 0
    assert capsys.readouterr().err == ""
    assert len(list((tmp_path / "b").iterdir())) == 2
