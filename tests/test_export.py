"""ONNX export and the onnxruntime backend: same ab as torch, same images, clear errors."""

import sys

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from pix2color import Colorizer
from pix2color.cli import main
from pix2color.color.lab import rgb_to_lab
from pix2color.models.encoder_unet import MobileNetClassUNet, MobileNetUNet
from pix2color.models.io import ModelNotFoundError, load_generator, save_pretrained
from pix2color.models.onnx_export import OnnxGenerator, export_onnx
from pix2color.models.unet import UNetGenerator
from tests.conftest import real_photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a training run may share the CPU

# odd sides (padding and cropping), a batch, and a side smaller than any factor
SHAPES = ((1, 1, 45, 67), (3, 1, 32, 32), (2, 1, 33, 100), (1, 1, 1, 1))


def tiny_unet() -> UNetGenerator:
    torch.manual_seed(0)
    return UNetGenerator(base_channels=8, depth=5, max_channels=32).eval()


@pytest.fixture(scope="module", params=["unet", "mobilenet_unet", "mobilenet_classes"])
def exported(request, tmp_path_factory):
    """(torch G, its export on onnxruntime) for each architecture and head."""
    torch.manual_seed(0)
    G = {
        "unet": tiny_unet,
        "mobilenet_unet": lambda: MobileNetUNet().eval(),
        "mobilenet_classes": lambda: MobileNetClassUNet().eval(),  # bins: ~1.5 s
    }[request.param]()
    path = export_onnx(G, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return G, OnnxGenerator(path)


@pytest.fixture(scope="module")
def unet_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "unet.onnx"
    return export_onnx(tiny_unet(), path, metadata={"recipe": "tiny"})


@torch.inference_mode()
def test_onnx_gives_the_torch_ab_at_odd_sizes_and_batches(exported):
    G, onnx_G = exported
    for shape in SHAPES:
        L = torch.rand(shape) * 2 - 1
        ref, out = G(L), onnx_G(L)
        assert out.shape == ref.shape == (shape[0], 2, *shape[2:]) and out.dtype == torch.float32
        assert (out - ref).abs().max().item() < 1e-3, shape
    assert ref.abs().mean() > 0.02  # not two near-zero outputs agreeing by accident


def test_colorizer_on_onnx_gives_the_same_image(exported):
    G, onnx_G = exported
    gray = Image.fromarray(real_photo("coffee")).convert("L")  # 600x400
    a = np.asarray(Colorizer(G, size=64)(gray), np.int16)
    b = np.asarray(Colorizer(onnx_G, size=64)(gray), np.int16)
    assert a.shape == b.shape == (400, 600, 3)
    assert np.abs(a - b).max() <= 1  # 8-bit rounding of a float-noise difference at most
    assert np.abs(rgb_to_lab(b.astype(np.uint8))[..., 1:]).mean() > 0.5  # coloured, not grey


def test_load_generator_reads_an_onnx_export(unet_onnx):
    G, info = load_generator(unet_onnx)
    assert isinstance(G, OnnxGenerator) and G.factor == 32
    assert info["architecture"] == "unet" and info["config"] == tiny_unet().config
    assert info["metadata"]["recipe"] == "tiny" and info["metadata"]["onnx"] == str(unet_onnx)
    out = Colorizer.from_pretrained(unet_onnx, size=32)(Image.new("L", (90, 50), 128))
    assert out.size == (90, 50) and out.mode == "RGB"


def test_onnx_runs_on_the_cpu_only(unet_onnx):
    onnx_G = OnnxGenerator(unet_onnx)
    assert onnx_G.eval() is onnx_G and onnx_G.to("cpu") is onnx_G
    with pytest.raises(ValueError, match="runs on the CPU"):
        onnx_G.to("cuda")
    with pytest.raises(ValueError, match="runs on the CPU"):
        Colorizer(onnx_G, device="cuda")


def test_wrong_input_shape_is_refused(unet_onnx):
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\), got shape \(1, 3, 32, 32\)"):
        OnnxGenerator(unet_onnx)(torch.zeros(1, 3, 32, 32))


def test_files_that_are_not_pix2color_exports_are_refused(unet_onnx, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    with pytest.raises(ModelNotFoundError, match="not a valid ONNX model"):
        load_generator(junk)
    bare = onnx.load(unet_onnx)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(ModelNotFoundError, match="pix2color export MODEL OUTPUT.onnx"):
        load_generator(tmp_path / "bare.onnx")


def test_missing_onnxruntime_says_how_to_install_it(unet_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ModelNotFoundError, match=r"pip install -r requirements\.txt"):
        load_generator(unet_onnx)


def test_a_failed_export_keeps_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "g.onnx"
    out.write_bytes(b"previous export")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export_onnx(tiny_unet(), out)
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["g.onnx"]  # no temporary file left


# ---------------------------------------------------------------- pix2color export
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_pretrained(
        tiny_unet(), tmp_path_factory.mktemp("m") / "tiny", metadata={"recipe": "tiny"}
    )


def test_cli_exports_a_model_folder_and_checks_it(model_dir, tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(model_dir), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MiB" in printed and "max |ab difference| vs torch" in printed
    diff = float(printed.split("vs torch ")[1].split()[0])
    assert diff < 1e-3
    G, info = load_generator(out)
    assert isinstance(G, OnnxGenerator) and info["metadata"]["recipe"] == "tiny"
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]  # the staged file is gone


def test_cli_writes_nothing_when_the_check_fails(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pix2color.models.onnx_export.max_ab_difference", lambda G, onnx_G: 0.5)
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(model_dir), str(out)]) == 1
    err = capsys.readouterr().err
    assert "differs from torch by 5.00e-01" in err and "not written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "model, output, message",
    [
        ("nope", "{tmp}/x.onnx", "model 'nope' not found"),
        ("{model}", "{tmp}/missing/x.onnx", "no such folder"),
        ("{model}", "{tmp}/x.pt", "must end in .onnx"),
        ("{tmp}/x.onnx", "{tmp}/y.onnx", "already ONNX"),
    ],
)
def test_cli_bad_input_is_one_line(model, output, message, model_dir, tmp_path, capsys):
    fill = {"tmp": tmp_path, "model": model_dir}
    assert main(["export", model.format(**fill), output.format(**fill)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_without_onnx_says_how_to_install_it(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(model_dir), str(tmp_path / "x.onnx")]) == 1
    assert "pip install -r requirements.txt" in capsys.readouterr().err
