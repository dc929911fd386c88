"""The onnxruntime backend by default (models/onnx_cache.py): the same colour as torch, made
once and cached, and torch with its reason wherever it cannot be used."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color import Colorizer
from pix2color.cli import main
from pix2color.errors import UsageError
from pix2color.models import io
from pix2color.models.encoder_unet import MobileNetUNet
from pix2color.models.io import save_pretrained
from pix2color.models.onnx_cache import BackendUnavailable, fast_generator, model_key
from pix2color.models.onnx_generator import OnnxGenerator
from tests.conftest import real_photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PIX2COLOR_CACHE", str(folder))
    return folder / "onnx"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    G = MobileNetUNet(pretrained=False, decoder_channels=(32, 32, 16, 16, 8, 8)).eval()
    return save_pretrained(G, tmp_path_factory.mktemp("m") / "tiny")


def gray_photo(name="astronaut", size=(200, 150)):
    return Image.fromarray(real_photo(name)).convert("L").resize(size)


def test_auto_runs_onnx_and_gives_the_torch_image_within_one_level(model_dir, cache):
    onnx_c = Colorizer.from_pretrained(model_dir)
    torch_c = Colorizer.from_pretrained(model_dir, backend="torch")
    assert onnx_c.backend == "onnx" and isinstance(onnx_c.net, OnnxGenerator)
    assert torch_c.backend == "torch" and torch_c.net is torch_c.G
    for name in ("astronaut", "coffee"):
        a = np.asarray(onnx_c(gray_photo(name)), dtype=int)
        b = np.asarray(torch_c(gray_photo(name)), dtype=int)
        assert np.abs(a - b).max() <= 1
    assert len(list(cache.glob("*.onnx"))) == 1


def test_the_twin_is_made_once_then_read_from_the_cache(model_dir, cache, monkeypatch):
    Colorizer.from_pretrained(model_dir)

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr("pix2color.models.onnx_export.export_onnx", no_export)
    assert Colorizer.from_pretrained(model_dir).backend == "onnx"


def test_a_cached_twin_is_found_without_loading_the_torch_model(model_dir, cache, monkeypatch):
    first = Colorizer.from_pretrained(model_dir, gain=1.5)
    loads = []
    real = io.load_generator
    monkeypatch.setattr(io, "load_generator", lambda p: loads.append(p) or real(p))
    again = Colorizer.from_pretrained(model_dir, gain=1.5)
    assert again.backend == "onnx" and not loads and again.net.path == first.net.path
    photo = gray_photo()
    assert np.array_equal(np.asarray(again(photo)), np.asarray(first(photo)))
    assert again.G.ab_gain == 1.5 and len(loads) == 1  # the torch model, when asked for
    with pytest.raises(UsageError, match="temperature applies only"):
        Colorizer.from_pretrained(model_dir, temperature=0.5)  # refused on the fast path too


def test_a_changed_weights_file_is_not_taken_for_its_cached_twin(model_dir, cache, tmp_path):
    import shutil

    copy = shutil.copytree(model_dir, tmp_path / "copy")
    Colorizer.from_pretrained(copy)
    G = MobileNetUNet(pretrained=False, decoder_channels=(32, 32, 16, 16, 8, 8)).eval()
    save_pretrained(G, copy)  # other weights, same folder
    changed = Colorizer.from_pretrained(copy)
    assert changed._G is not None  # loaded: the index did not match the new files
    assert len(list(cache.glob("*.onnx"))) == 2


def test_a_photo_coloured_by_a_cached_twin_loads_no_torch(model_dir, cache, tmp_path):
    import os
    import subprocess

    src = tmp_path / "in.png"
    gray_photo().save(src)
    Colorizer.from_pretrained(model_dir)  # makes the twin
    code = (
        "import sys; from pix2color.cli import main; "
        f"rc = main(['colorize', {str(src)!r}, '--model', {str(model_dir)!r}, '-o', "
        f"{str(tmp_path / 'out')!r}, '-q']); "
        "print('torch' in sys.modules, 'numba' in sys.modules); sys.exit(rc)"
    )
    env = {**os.environ, "PIX2COLOR_CACHE": str(cache.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout
    assert (tmp_path / "out" / "in.png").is_file()


def test_a_damaged_cache_file_is_made_again(model_dir, cache):
    Colorizer.from_pretrained(model_dir)
    (path,) = cache.glob("*.onnx")
    path.write_bytes(b"not onnx")
    c = Colorizer.from_pretrained(model_dir)
    assert c.backend == "onnx" and path.stat().st_size > 1000


def test_a_twin_that_differs_is_never_used_and_says_why(model_dir, cache, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr("pix2color.models.onnx_export.max_ab_difference", lambda *a, **k: 0.5)
        c = Colorizer.from_pretrained(model_dir)
    assert c.net is c.G and c.backend.startswith("torch (") and "differs" in c.backend
    assert not list(cache.glob("*.onnx")) and list(cache.glob("*.failed"))
    # remembered: not even tried again
    assert Colorizer.from_pretrained(model_dir).backend.startswith("torch (")
    with pytest.raises(BackendUnavailable, match="differs"):
        Colorizer.from_pretrained(model_dir, backend="onnx")


def test_without_onnxruntime_auto_is_torch_and_onnx_is_refused(model_dir, cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    c = Colorizer.from_pretrained(model_dir)
    assert c.net is c.G and "onnxruntime is not installed" in c.backend
    with pytest.raises(UsageError, match="onnxruntime is not installed"):
        Colorizer.from_pretrained(model_dir, backend="onnx")


def test_the_colour_setting_is_part_of_the_key(model_dir):
    a = Colorizer.from_pretrained(model_dir, backend="torch").G
    b = Colorizer.from_pretrained(model_dir, backend="torch", gain=1.5).G
    assert model_key(a) != model_key(b)


def test_an_unknown_backend_is_refused():
    with pytest.raises(UsageError, match="use one of auto, onnx, torch"):
        fast_generator(torch.nn.Identity(), "tensorrt")


def test_at_size_shares_the_network(model_dir, cache):
    c = Colorizer.from_pretrained(model_dir)
    small = c.at_size(128)
    assert small.net is c.net and small.size == 128 and c.size == 256
    with pytest.raises(UsageError, match="too small"):
        c.at_size(8)


def test_cli_backends_give_the_same_photo(model_dir, cache, tmp_path):
    src = tmp_path / "in.png"
    gray_photo().save(src)
    for backend in ("onnx", "torch"):
        args = ["colorize", str(src), "--model", str(model_dir), "-o", str(tmp_path / backend)]
        assert main([*args, "--backend", backend, "-q"]) == 0
    a = np.asarray(Image.open(tmp_path / "onnx" / "in.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "torch" / "in.png"), dtype=int)
    assert np.abs(a - b).max() <= 1
