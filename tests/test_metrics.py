import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pix2color.eval.metrics import PSNR_CAP, psnr, ssim
from tests.conftest import real_photo


def _pair(sigma):
    a = real_photo("astronaut")[:200, :240].astype(np.float64) / 255
    b = np.clip(a + np.random.default_rng(0).normal(0, sigma, a.shape), 0, 1)
    t = [torch.tensor(v).permute(2, 0, 1)[None].float() for v in (a, b)]
    return a, b, t[0], t[1]


@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_ssim_and_psnr_match_scikit_image(sigma):
    a, b, ta, tb = _pair(sigma)
    ref = structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1,
    )
    assert ssim(ta, tb).item() == pytest.approx(ref, abs=1e-4)
    assert psnr(ta, tb).item() == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=1), abs=1e-3
    )


def test_identical_images():
    _, _, ta, _ = _pair(0.1)
    assert ssim(ta, ta).item() == pytest.approx(1.0, abs=1e-5)
    assert psnr(ta, ta).item() == PSNR_CAP
