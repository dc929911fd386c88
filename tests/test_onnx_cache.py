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
from pix2color.models import onnx_cache
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


def grey_photo(name="astronaut", size=(200, 150)):
    return Image.fromarray(real_photo(name)).convert("L").resize(size)


def test_auto_runs_onnx_and_gives_the_torch_image_within_one_level(model_dir, cache):
    onnx_c = Colorizer.from_pretrained(model_dir)
    torch_c = Colorizer.from_pretrained(model_dir, backend="torch")
    assert onnx_c.backend == "onnx" and isinstance(onnx_c.net, OnnxGenerator)
    assert torch_c.backend == "torch" and torch_c.net is torch_c.G
    for name in ("astronaut", "coffee"):
        a = np.asarray(onnx_c(grey_photo(name)), dtype=int)
        b = np.asarray(torch_c(grey_photo(name)), dtype=int)
        assert np.abs(a - b).max() <= 1
    assert len(list(cache.glob("*.onnx"))) == 1


def test_the_twin_is_made_once_then_read_from_the_cache(model_dir, cache, monkeypatch):
    Colorizer.from_pretrained(model_dir)

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_cache, "export_onnx", no_export)
    assert Colorizer.from_pretrained(model_dir).backend == "onnx"


def test_a_damaged_cache_file_is_made_again(model_dir, cache):
    Colorizer.from_pretrained(model_dir)
    (path,) = cache.glob("*.onnx")
    path.write_bytes(b"not onnx")
    c = Colorizer.from_pretrained(model_dir)
    assert c.backend == "onnx" and path.stat().st_size > 1000


def test_a_twin_that_differs_is_never_used_and_says_why(model_dir, cache, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(onnx_cache, "max_ab_difference", lambda *a, **k: 0.5)
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
    grey_photo().save(src)
    for backend in ("onnx", "torch"):
        args = ["colorize", str(src), "--model", str(model_dir), "-o", str(tmp_path / backend)]
        assert main([*args, "--backend", backend, "-q"]) == 0
    a = np.asarray(Image.open(tmp_path / "onnx" / "in.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "torch" / "in.png"), dtype=int)
    assert np.abs(a - b).max() <= 1
