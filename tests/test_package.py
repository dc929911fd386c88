"""pix2color as a real package: a wheel installed (not editable) colours photos anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, real_photo


def run(*args: str | Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_the_wheel_installs_and_colours_a_photo_from_another_folder(tmp_path):
    # build the wheel from a copy of the files git would commit, as in a fresh clone (and so
    # that the build leaves nothing behind in this checkout)
    listed = run("git", "ls-files", "-co", "--exclude-standard", cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    clone = tmp_path / "clone"
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    wheels = tmp_path / "wheels"
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", wheels, clone, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("pix2color-*.whl")

    # a fresh venv; its dependencies (torch, ...) come from this environment's site-packages
    # through a path entry, which does not run this environment's editable-install hook
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    py = venv / "bin" / "python"
    site = run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run(py, "-m", "pip", "install", "--no-deps", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.fromarray(real_photo("chelsea")[::2, ::2]).convert("L").save(elsewhere / "cat.png")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIX2COLOR_MODELS")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # an empty user folder
    where = run(py, "-c", "import pix2color; print(pix2color.__file__)", cwd=elsewhere, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel's copy

    listed = run(venv / "bin" / "pix2color", "models", cwd=elsewhere, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "default" in listed.stdout and str(venv) in listed.stdout
    assert "pix2pix-scratch" not in listed.stdout  # only the default travels in the package
    done = run(
        venv / "bin" / "pix2color", "colorize", "cat.png", "-o", "out", cwd=elsewhere, env=env
    )
    assert done.returncode == 0, done.stderr
    out = Image.open(elsewhere / "out" / "cat.png")
    assert out.size == (226, 150) and out.mode == "RGB"
