import numpy as np
import pytest
import torch
from PIL import Image

from pix2color import Colorizer
from pix2color.color.lab import rgb_to_lab
from pix2color.inference.colorizer import photo_from_pil
from pix2color.inference.join import working_shape
from pix2color.models.io import save_pretrained
from pix2color.models.unet import UNetGenerator
from tests.conftest import real_photo


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    G = UNetGenerator(base_channels=8, depth=4, max_channels=16).eval()
    return save_pretrained(G, tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def colorizer(tiny_model_dir):
    return Colorizer.from_pretrained(tiny_model_dir, size=64)


def L_of(img: Image.Image) -> np.ndarray:
    return rgb_to_lab(np.asarray(img.convert("RGB")))[..., 0]


def test_output_keeps_size_and_luminance_of_a_grey_photo(colorizer):
    gray = Image.fromarray(real_photo("coffee")).convert("L")  # 600x400
    out = colorizer(gray)
    assert out.size == gray.size and out.mode == "RGB"
    ref = L_of(gray)
    diff = np.abs(L_of(out) - ref)
    # 8-bit rounding and gamut clipping move L a little; losing the full-res L moves it a lot
    assert diff.mean() < 0.5 and np.percentile(diff, 99) < 5.0
    a_b = rgb_to_lab(np.asarray(out))[..., 1:]
    assert np.abs(a_b).mean() > 0.5  # it is not returned grey


def test_colour_input_is_coloured_anew_from_its_luminance(colorizer):
    rgb = Image.fromarray(real_photo("chelsea"))
    gray = rgb.convert("L")
    a, b = np.asarray(colorizer(rgb), np.float32), np.asarray(colorizer(gray), np.float32)
    assert np.abs(a - b).mean() < 3.0  # same answer whether the photo had colour or not


def test_alpha_is_kept(colorizer):
    rgba = Image.fromarray(real_photo("rocket")).convert("RGBA")
    alpha = np.zeros(rgba.size[::-1], np.uint8)
    alpha[:, ::2] = 255
    rgba.putalpha(Image.fromarray(alpha))
    out = colorizer(rgba)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)


def test_sixteen_bit_grey_keeps_its_precision():
    ramp = (np.linspace(0, 65535, 256 * 64).reshape(64, 256)).astype(np.uint16)
    photo = photo_from_pil(Image.fromarray(ramp))  # uint16 -> mode I;16
    assert photo.gray.dtype == np.float32 and len(np.unique(photo.gray)) > 1000


def test_working_shape_keeps_aspect():
    assert working_shape(768, 1024, 256) == (192, 256)
    assert working_shape(3000, 100, 256) == (256, 9)


def test_batch_gives_the_same_result_as_one_by_one(colorizer, tmp_path):
    paths = []
    for name in ("astronaut", "coffee", "rocket"):
        p = tmp_path / f"{name}.png"
        Image.fromarray(real_photo(name)).convert("L").save(p)
        paths.append(p)
    batched = {p: img for p, img, _, _ in colorizer.colorize_files(paths, batch_size=3)}
    for p in paths:
        diff = np.abs(np.asarray(colorizer(p), np.int16) - np.asarray(batched[p], np.int16))
        # padding to the batch's shape only nudges pixels near the padded border
        assert diff.mean() < 0.2 and diff.max() <= 10


def test_too_small_working_size_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="too small"):
        Colorizer.from_pretrained(tiny_model_dir, size=4)
