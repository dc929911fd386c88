import numpy as np
import pytest
import torch
from skimage import color as skcolor

from pix2color.color import lab as color
from pix2color.color import rows
from tests.conftest import real_photo


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_rgb_to_lab_matches_scikit_image(name):
    rgb = real_photo(name)
    assert np.abs(color.rgb_to_lab(rgb) - skcolor.rgb2lab(rgb)).max() < 1e-3


def test_lab_round_trip_returns_the_photo():
    rgb = real_photo("chelsea").astype(np.float32) / 255
    back = color.lab_to_rgb(color.rgb_to_lab(rgb))
    assert np.abs(back - rgb).max() < 1e-4


def test_lab_to_rgb_matches_scikit_image_out_of_gamut():
    lab = skcolor.rgb2lab(real_photo("rocket")).astype(np.float32)
    lab[..., 1:] *= 2.0  # push colours out of the sRGB gamut: both must clip the same way
    assert np.abs(color.lab_to_rgb(lab) - skcolor.lab2rgb(lab)).max() < 1e-4


def test_gray_to_L_is_the_L_of_a_neutral_grey():
    g = np.linspace(0, 1, 257, dtype=np.float32)
    ref = skcolor.rgb2lab(np.repeat(g[None, :, None], 3, axis=2))[0, :, 0]
    assert np.abs(color.gray_to_L(g).numpy() - ref).max() < 1e-3


def test_network_scaling_round_trip_and_range():
    rgb = torch.from_numpy(real_photo("astronaut")).permute(2, 0, 1).float()[None] / 255
    L, ab = color.rgb_to_network(rgb)
    assert L.shape == (1, 1, 512, 512) and ab.shape == (1, 2, 512, 512)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    assert torch.allclose(color.lab_tensor_to_rgb(L, ab), rgb, atol=1e-4)


def test_the_compiled_lab_rows_match_the_reference_formula_within_one_level():
    # the join's per-pixel loops (kernels.py) against lab_to_rgb_t, on the corners of Lab too:
    # black and white, near black (f's linear segment), far out of gamut (clipped), odd widths
    rng = np.random.default_rng(0)
    L = rng.uniform(0, 100, (5, 37)).astype(np.float32)
    a = rng.uniform(-128, 127, (5, 37)).astype(np.float32)
    b = rng.uniform(-128, 127, (5, 37)).astype(np.float32)
    L[0, :4], a[0, :4], b[0, :4] = [0, 100, 0.5, 3], [0, 0, 90, -90], [0, 0, -110, 110]
    ref = color.lab_to_rgb_t(torch.from_numpy(np.stack([L, a, b]))).clamp(0, 1)
    ref = ref.permute(1, 2, 0).numpy()
    out8 = np.empty((5, 37, 3), np.uint8)
    rows.lab_rows_to_rgb8(L, a, b, out8)
    assert np.abs(out8.astype(np.int32) - (ref * 255 + 0.5).astype(np.int32)).max() <= 1
    out16 = np.empty((5, 37, 4), np.uint16)  # a strided view, as the 16-bit join passes
    rows.lab_rows_to_rgb16(L, a, b, out16[..., :3])
    assert np.abs(out16[..., :3].astype(np.int32) - (ref * 65535 + 0.5).astype(np.int32)).max() <= 1
    assert tuple(out8[0, 0]) == (0, 0, 0) and tuple(out8[0, 1]) == (255, 255, 255)


def test_lab_conversions_follow_the_input_device():
    # the constants live on the CPU; a CUDA tensor must not meet them there (found on a lent GPU:
    # validation failed with "Expected all tensors to be on the same device"). The meta device
    # stands in for CUDA here: mixing it with CPU tensors raises the same way.
    lab = torch.zeros(2, 3, 8, 8, device="meta")
    assert color.lab_to_rgb_t(lab).device.type == "meta"
    assert color.rgb_to_lab_t(torch.zeros(2, 3, 8, 8, device="meta")).device.type == "meta"
