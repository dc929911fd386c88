"""The torch-free working-size arithmetic (color/resample.py, color/rows.py) against what it
stands in for: PyTorch's kernels, lab.py's torch formulas, and numba's compiled join."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pix2color.color import kernels, lab, rows
from pix2color.color.resample import box_mean, downscale, downscale_last
from pix2color.color.upsample import BandColor, bilinear_taps


@pytest.mark.parametrize(
    ("n_in", "n_out"), [(61, 25), (451, 256), (512, 256), (1024, 256), (4000, 256), (80, 205)]
)
def test_the_antialiased_downscale_is_torchs(n_in, n_out):
    x = np.random.default_rng(n_in).uniform(0, 100, (5, n_in)).astype(np.float32)
    t = F.interpolate(torch.from_numpy(x)[None, None], size=(5, n_out), mode="bilinear",
                      antialias=True)[0, 0].numpy()  # fmt: skip
    # to the bit on the machine it was written on; another CPU may run another build of
    # torch's loop, so the test allows float rounding
    assert np.abs(downscale_last(x, n_out) - t).max() <= 1e-4


def test_the_downscale_goes_along_the_width_then_the_height():
    x = np.random.default_rng(1).uniform(0, 100, (301, 407)).astype(np.float32)
    t = F.interpolate(torch.from_numpy(x)[None, None], size=(190, 256), mode="bilinear",
                      antialias=True)[0, 0].numpy()  # fmt: skip
    assert np.abs(downscale(x, (190, 256)) - t).max() <= 1e-4
    assert np.abs(downscale(x, (190, 256)) - t).mean() < 1e-6


@pytest.mark.parametrize("radius", [1, 2])
def test_the_box_mean_is_avg_pool(radius):
    x = np.random.default_rng(2).uniform(-1, 1, (2, 37, 53)).astype(np.float32)
    t = F.avg_pool2d(torch.from_numpy(x)[None], 2 * radius + 1, stride=1, padding=radius,
                     count_include_pad=False)[0].numpy()  # fmt: skip
    assert np.abs(box_mean(x, radius) - t).max() <= 1e-6
    corner = x[:, : radius + 1, : radius + 1].mean(axis=(1, 2))  # the window cut at two borders
    assert np.abs(box_mean(x, radius)[:, 0, 0] - corner).max() < 1e-6


def test_the_shipped_tables_are_labs_formulas():
    values = lab.table_values()
    assert np.abs(rows.gray_L_table(8) - values["grey_L_8"]).max() <= 1e-4
    assert np.abs(rows.gray_L_table(16) - values["grey_L_16"]).max() <= 1e-4
    assert np.abs(rows.srgb8_linear_table() - values["srgb8_linear"]).max() <= 1e-6
    assert rows.gray_L_table(8)[0] == 0 and abs(rows.gray_L_table(16)[-1] - 100) < 1e-4


@pytest.mark.parametrize("mode", ["bilinear", "guided"])
def test_the_numpy_join_gives_the_compiled_joins_bytes(mode, monkeypatch):
    monkeypatch.setattr(rows, "compiled", lambda pixels: False)  # numba is loaded here
    rng = np.random.default_rng(3)
    h, w, H, W = 37, 53, 150, 211
    ab = rng.uniform(-60, 60, (2, h, w)).astype(np.float32)
    L_small = rng.uniform(0, 100, (1, h, w)).astype(np.float32)
    L = rng.uniform(0, 100, (40, W)).astype(np.float32)
    L[0, :3] = [0, 100, 0.5]  # black, white, near black
    color = BandColor(ab, L_small, (H, W), mode=mode)
    up = color.up
    y0, y1, wy0, wy1 = bilinear_taps(h, H, 10, 50)
    args = (L, up.small, up.x0, up.x1, up.wx0, up.wx1, y0, y1, wy0, wy1, mode == "guided",
            *rows.rgb8_tables())  # fmt: skip
    compiled, numpy_ = np.zeros((40, W, 3), np.uint8), np.zeros((40, W, 3), np.uint8)
    kernels.upsample_lab_to_rgb8(*args, compiled)
    color.rgb8(10, 50, L, numpy_)  # a small photo: numpy
    assert np.array_equal(compiled, numpy_) and compiled.any()
    a, b = rng.uniform(-128, 127, (2, 40, W)).astype(np.float32)
    kernels.lab_to_rgb8(L, a, b, *rows.rgb8_tables(), compiled)
    rows.rows_to_rgb8(L, a, b, *rows.rgb8_tables(), numpy_)
    assert np.array_equal(compiled, numpy_)


def test_big_photos_are_joined_compiled_and_small_ones_in_numpy(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "numba", raising=False)
    assert not rows.compiled(1024 * 768) and rows.compiled(rows.COMPILE_FROM_PIXELS)
