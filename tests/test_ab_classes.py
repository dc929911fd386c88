"""Colour as classes: the bins, the soft targets and rebalancing, the class head, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pix2color.cli import main
from pix2color.color.classes import (
    ColorClassLoss,
    ab_bin_centres,
    ab_prior,
    annealed_mean,
    rebalancing_weights,
)
from pix2color.color.lab import AB_SCALE, rgb_to_lab_t
from pix2color.models.color_settings import BOOSTS, TEMPERATURES
from pix2color.models.encoder_unet import MobileNetClassUNet, MobileNetUNet
from pix2color.models.io import load_generator, save_pretrained
from pix2color.models.patchgan import PatchDiscriminator
from pix2color.train import fit, train_step
from pix2color.train.calibrate import choose, sweep, val_loader
from pix2color.train.setup import init_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return ab_bin_centres()


@pytest.fixture(scope="module")
def G(bins) -> MobileNetUNet:
    # n_bins given: the centres come from the state dict, as for a loaded model
    G = MobileNetClassUNet(n_bins=len(bins))
    G.bins.copy_(bins)
    return G.eval()


def test_bins_cover_srgb_and_only_srgb(bins):
    assert 240 <= len(bins) <= 320  # Zhang et al. report 313 on a slightly wider gamut
    assert torch.all(bins % 10 == 0)
    # saturated primaries land in (or next to) a bin; far corners of the ab square do not exist
    v = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=torch.float64)
    ab = rgb_to_lab_t(v.T[:, :, None])[1:, :, 0].T.float()
    assert torch.cdist(ab, bins).min(dim=1).values.max() <= 10 * 2**0.5 / 2 + 1e-4
    assert torch.cdist(torch.tensor([[100.0, 100.0], [-100.0, -100.0]]), bins).min() > 20


def test_annealed_mean_goes_from_mean_to_mode(bins):
    logits = torch.full((1, len(bins), 1, 1), -10.0)
    i, j = 10, 200
    logits[0, i], logits[0, j] = 2.0, 1.0
    mode = bins[i] / AB_SCALE
    mean = annealed_mean(logits, bins, 1.0)[0, :, 0, 0]
    cold = annealed_mean(logits, bins, 0.05)[0, :, 0, 0]
    assert torch.allclose(cold, mode, atol=1e-4)
    # at T=1 the mean sits between the two bins, nearer the likelier one
    t = ((mean - bins[j] / AB_SCALE) / ((bins[i] - bins[j]) / AB_SCALE)).mean()
    assert 0.6 < t < 0.8  # e / (e + 1) = 0.73, minus the small mass on the other bins


def test_rebalancing_weights_favour_rare_bins_and_average_one(bins):
    prior = torch.zeros(len(bins))
    gray = torch.cdist(torch.zeros(1, 2), bins).argmin()
    prior[gray] = 0.9
    prior[0] = 0.1
    w = rebalancing_weights(prior, bins, mix=0.5)
    assert w[gray] < w[0] < w.max()
    uniform = rebalancing_weights(torch.full((len(bins),), 1 / len(bins)), bins)
    assert uniform.mean() == pytest.approx(1, abs=0.05)  # mean weight 1 (edges smooth a bit less)
    none = rebalancing_weights(prior, bins, mix=1.0)
    assert torch.allclose(none, torch.ones_like(none), atol=1e-5)  # mix=1: no rebalancing


def test_prior_counts_nearest_bins(bins):
    px = torch.tensor([[0.0, 0.0], [1.0, -2.0], [41.0, 59.0]])
    p = ab_prior(px, bins)
    gray = torch.cdist(torch.zeros(1, 2), bins).argmin()
    assert p[gray] == pytest.approx(2 / 3)
    assert p.sum() == pytest.approx(1)


def test_class_loss_is_lowest_for_the_true_colour(bins):
    loss = ColorClassLoss(bins, torch.ones(len(bins)))
    ab = torch.zeros(1, 2, 8, 8)
    ab[:, 0], ab[:, 1] = 40 / AB_SCALE, 60 / AB_SCALE
    right = torch.full((1, len(bins), 2, 2), -5.0)
    right[:, torch.cdist(torch.tensor([[40.0, 60.0]]), bins).argmin()] = 5.0
    wrong = torch.full((1, len(bins), 2, 2), -5.0)
    wrong[:, torch.cdist(torch.tensor([[-40.0, -60.0]]), bins).argmin()] = 5.0
    assert loss(right, ab) + 5 < loss(wrong, ab)


def test_class_head_shapes_range_and_logits(G, bins):
    for h, w in [(32, 32), (37, 53), (70, 33)]:
        with torch.no_grad():
            ab, logits = G(torch.rand(2, 1, h, w) * 2 - 1, return_logits=True)
        assert ab.shape == (2, 2, h, w)
        assert logits.shape == (2, len(bins), -(-h // 4), -(-w // 4))
        assert ab.abs().max() <= bins.abs().max() / AB_SCALE + 1e-6


def test_class_head_saves_and_loads_with_its_bins_and_temperature(G, tmp_path):
    G.temperature = 0.3
    G.config["temperature"] = 0.3
    save_pretrained(G, tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["config"]
    info = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (
        info["architecture"] == "mobilenet_classes"
        and cfg["n_bins"] == len(G.bins)
        and cfg["temperature"] == 0.3
    )
    G2, _ = load_generator(tmp_path / "m")
    assert torch.equal(G2.bins, G.bins) and G2.temperature == 0.3
    L = torch.rand(1, 1, 40, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(G2(L), G(L), atol=1e-6)
    G.temperature = G.config["temperature"] = 0.38


def test_train_step_with_class_loss_learns_a_colour(bins):
    torch.manual_seed(0)
    G = MobileNetClassUNet(n_bins=len(bins), decoder_channels=(32, 32, 16, 16, 8, 8))
    G.bins.copy_(bins)
    loss = ColorClassLoss(bins, torch.ones(len(bins)))
    opt = torch.optim.Adam(G.decoder_parameters(), lr=1e-2)
    D = PatchDiscriminator(base_channels=8, n_layers=1)  # not used before its start
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    ab = torch.zeros(2, 2, 32, 32)
    ab[:, 0], ab[:, 1] = 30 / AB_SCALE, -40 / AB_SCALE
    first = None
    for _ in range(30):
        out = train_step(G, D, opt, None, None, L, ab, lambda_l1=0.0, use_gan=False,
                         class_loss=loss, lambda_class=1.0)  # fmt: skip
        first = first if first is not None else out["loss_g_class"]
    assert out["loss_g_class"] < first / 2  # 5.6 -> about 1.5 (soft targets: never 0)
    G.eval()
    with torch.no_grad():
        pred = G(L).mean(dim=(0, 2, 3)) * AB_SCALE
    assert torch.allclose(pred, torch.tensor([30.0, -40.0]), atol=3)


def test_init_from_copies_matching_weights(bins, tmp_path):
    src = MobileNetUNet()  # a regression model, like the L1 warm-up
    save_pretrained(src, tmp_path / "warm")
    G = MobileNetClassUNet(n_bins=len(bins))
    fresh = init_generator(G, tmp_path / "warm")
    assert "head.weight" in fresh and "bins" in fresh
    assert not any(k.startswith(("encoder.", "bottleneck.", "ups.0", "ups.2")) for k in fresh)
    assert torch.equal(
        G.encoder.features[3].conv[0][0].weight, src.encoder.features[3].conv[0][0].weight
    )


def test_sweep_scores_every_boost_and_temperature_and_restores_the_model(G, photo_root):
    from pix2color.data.dataset import load_photos, split_files
    from pix2color.train.calibrate import log_prior

    loader = val_loader(photo_root, size=64)
    prior = log_prior(load_photos(split_files(photo_root, "train"), 48), G.bins)
    assert prior.shape == (len(G.bins),) and torch.isfinite(prior).all()
    bias = G.head.bias.detach().clone()
    rows = sweep(G, loader, torch.device("cpu"), (0.2, 1.0), (0.0, 0.5), prior)
    assert [(r["boost"], r["temperature"]) for r in rows] == [
        (0.0, 0.2), (0.0, 1.0), (0.5, 0.2), (0.5, 1.0),
    ]  # fmt: skip
    assert G.temperature == 0.38 and torch.equal(G.head.bias, bias)  # restored
    assert {"cf", "cf_truth", "dcf", "psnr", "psnr_grey", "psnr_gain_se"} <= set(rows[0])
    assert rows[0]["cf"] != rows[2]["cf"]  # the boost changes the colour
    with pytest.raises(ValueError, match="colour prior"):
        sweep(G, loader, torch.device("cpu"), (0.3,), (0.5,), None)


def _row(boost, t, dcf, psnr=22.0, **extra):
    return dict(boost=boost, temperature=t, dcf=dcf, psnr=psnr, psnr_grey=21.0,
                psnr_gain_se=0.25, **extra)  # fmt: skip


def test_choice_is_the_liveliest_setting_that_keeps_the_psnr_guard():
    rows = [_row(0, 0.3, 4.0), _row(0, 0.5, 1.0), _row(0, 1.0, 1.0)]
    assert choose(rows)["temperature"] == 1.0  # ties go to the safer, higher T
    rows.append(_row(0.5, 0.5, 0.5, psnr=20.6))  # 0.4 dB under grey, 2 SE = 0.5: noise
    assert choose(rows)["boost"] == 0.5
    rows[-1]["psnr"] = 20.0  # 1 dB under grey: significantly worse, however vivid
    assert choose(rows)["boost"] == 0.0
    for r in rows:
        r["psnr"] = 19.0 + r["temperature"]  # none passes: the best PSNR wins
    assert choose(rows)["temperature"] == 1.0


def test_lpips_target_guards_only_when_some_setting_reaches_it():
    rows = [_row(0, 0.5, 6.0, lpips=0.15, lpips_grey=0.22),
            _row(0.5, 0.5, 1.0, lpips=0.20, lpips_grey=0.22)]  # fmt: skip
    assert choose(rows)["boost"] == 0.0  # only the first is 25 % under grey's LPIPS
    rows[0]["lpips"] = 0.19  # now neither is: the target cannot choose, ΔCF does
    assert choose(rows)["boost"] == 0.5


def test_regression_model_has_no_temperature(photo_root):
    with pytest.raises(ValueError, match="class head"):
        sweep(MobileNetUNet(), val_loader(photo_root, 32), torch.device("cpu"))


def test_fit_with_class_head_calibrates_the_best_model(tiny_config, tmp_path, capsys):
    cfg = tiny_config(
        'model.generator="mobilenet_unet"', "model.pretrained=false", 'model.head="classes"',
        "train.lambda_l1=0", "train.lambda_class=1", "train.epochs=1", "data.crop=32",
    )  # fmt: skip
    summary = fit(cfg, tmp_path / "run", progress=False)
    assert summary["temperature"] in TEMPERATURES and summary["boost"] in BOOSTS
    info = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert info["config"]["temperature"] == summary["temperature"]
    calibration = info["metadata"]["calibration"]
    assert len(calibration["sweep"]) == len(TEMPERATURES) * len(BOOSTS)
    assert calibration["boost_in_bias"] == summary["boost"]
    chosen = next(r for r in calibration["sweep"] if r["boost"] == summary["boost"]
                  and r["temperature"] == summary["temperature"])  # fmt: skip
    assert info["metadata"]["val_metrics"]["dcf"] == chosen["dcf"]  # the calibrated model's
    assert "val_metrics_before_calibration" in info["metadata"]
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "loss_g_class" in header and "dcf" in header and "psnr_grey" in header
    # the CLI calibrates the run's checkpoint into another folder and prints the sweep
    ckpt, cal = str(tmp_path / "run" / "best.pt"), str(tmp_path / "cal")
    args = ["calibrate", ckpt, "--data", str(cfg.data.root), "--temperatures", "0.3,0.6",
            "--boosts", "0,0.5", "--size", "32", "--no-lpips", "--half"]  # fmt: skip
    code = main([*args, "-o", cal])
    out = capsys.readouterr().out
    assert code == 0 and "| 0.5 | 0.3 |" in out and "chose prior boost" in out
    saved = json.loads((tmp_path / "cal" / "config.json").read_text())
    assert saved["config"]["temperature"] in (0.3, 0.6)
    assert saved["metadata"]["calibration"]["chosen"]["boost"] in (0.0, 0.5)
    G2, _ = load_generator(cal)
    assert G2.head.bias.dtype == torch.float32  # loaded as fp32 from the fp16 file
    # a boosted model would be boosted twice: refused with a one-line hint
    saved["metadata"]["calibration"]["boost_in_bias"] = 0.5
    (tmp_path / "cal" / "config.json").write_text(json.dumps(saved))
    assert main(["calibrate", cal, "--data", str(cfg.data.root), "-o", cal + "2"]) == 2
    assert "already holds a prior boost of 0.5" in capsys.readouterr().err
    # choosing only the temperature again keeps the record of the boost in the bias
    args = ["calibrate", cal, "--data", str(cfg.data.root), "--boosts", "0", "--no-lpips"]
    assert main([*args, "--size", "32", "-o", cal + "3"]) == 0
    again = json.loads((tmp_path / "cal3" / "config.json").read_text())["metadata"]
    assert again["calibration"]["boost_in_bias"] == 0.5


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lambda_class=1", "needs model.head='classes'"),
        ('model.head="bins"', "use regression or classes"),
        ('train.init_from="no/such/model"', "does not exist"),
    ],
)
def test_bad_class_recipes_fail_before_training(tiny_config, tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        fit(tiny_config(override), tmp_path / "run", progress=False)


def test_calibrate_cli_refuses_a_model_without_a_colour_knob(tmp_path, photo_root, capsys):
    from pix2color.models.unet import UNetGenerator

    save_pretrained(UNetGenerator(base_channels=8, depth=5), tmp_path / "unet")
    assert main(["calibrate", str(tmp_path / "unet"), "--data", str(photo_root)]) == 2
    assert "neither colour classes" in capsys.readouterr().err
    save_pretrained(MobileNetUNet(), tmp_path / "reg")
    assert main(["calibrate", str(tmp_path / "reg"), "--temperatures", "x"]) == 2
    assert "--temperatures" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "reg"), "--boosts", "0,y"]) == 2
    assert "--boosts" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "reg"), "--gains", "1,z"]) == 2
    assert "--gains" in capsys.readouterr().err


def test_choose_among_gains_keeps_the_guards_and_prefers_the_smaller_gain():
    row = {"cf_truth": 40.0, "psnr_grey": 23.0, "psnr_gain_se": 0.2}
    rows = [
        {**row, "gain": 1.0, "dcf": 10.0, "psnr": 24.0},
        {**row, "gain": 1.4, "dcf": 2.0, "psnr": 23.0},
        {**row, "gain": 1.6, "dcf": 2.0, "psnr": 22.9},  # as close, but bolder
        {**row, "gain": 2.0, "dcf": 0.5, "psnr": 22.0},  # 1 dB below grey: fails the guard
    ]
    assert choose(rows)["gain"] == 1.4


def test_calibrate_cli_chooses_an_ab_gain_for_an_l1_model(tmp_path, photo_root, capsys):
    G = MobileNetUNet().eval()
    with torch.no_grad():  # a pale, constant colour: more gain brings it nearer the truth's
        G.head[0].weight.zero_()
        G.head[0].bias.copy_(torch.tensor([0.05, 0.08]))
    save_pretrained(G, tmp_path / "reg")
    args = ["calibrate", str(tmp_path / "reg"), "--data", str(photo_root), "--gains", "1,2.5"]
    assert main([*args, "--size", "32", "--no-lpips", "-o", str(tmp_path / "cal")]) == 0
    out = capsys.readouterr().out
    assert "| gain | cf |" in out and "chose ab gain" in out
    saved = json.loads((tmp_path / "cal" / "config.json").read_text())
    sweep = saved["metadata"]["calibration"]["sweep"]
    assert [r["gain"] for r in sweep] == [1.0, 2.5] and sweep[1]["cf"] > sweep[0]["cf"] * 2
    chosen = choose(sweep)["gain"]
    assert saved["metadata"]["calibration"]["chosen"] == {"gain": chosen}
    assert saved["config"].get("ab_gain", 1.0) == chosen
    assert load_generator(tmp_path / "cal")[0].ab_gain == chosen


def _chroma(folder) -> float:
    """Mean Lab chroma of folder/grey.png (a colorize result)."""
    from PIL import Image

    lab = rgb_to_lab_t(torch.from_numpy(np.array(Image.open(folder / "grey.png")))
                       .permute(2, 0, 1).double() / 255)  # fmt: skip
    return lab[1:].norm(dim=0).mean().item()


def test_colorize_temperature_sets_how_bold_the_colour_is(G, tmp_path, capsys):
    from PIL import Image

    from pix2color.inference.colorizer import Colorizer
    from tests.conftest import real_photo

    G = MobileNetClassUNet(n_bins=len(G.bins))
    G.bins.copy_(ab_bin_centres())
    with torch.no_grad():  # every pixel: a saturated orange (likelier) or neutral grey
        G.head.weight.zero_()
        G.head.bias.fill_(-20.0)
        G.head.bias[torch.cdist(torch.tensor([[40.0, 60.0]]), G.bins).argmin()] = 2.0
        G.head.bias[torch.cdist(torch.zeros(1, 2), G.bins).argmin()] = 1.5
    save_pretrained(G.eval(), tmp_path / "m")
    gray = tmp_path / "grey.png"
    Image.fromarray(real_photo("chelsea")[::4, ::4]).convert("L").save(gray)

    for t in ("0.1", "1.5"):
        args = ["colorize", str(gray), "-o", str(tmp_path / t), "--model", str(tmp_path / "m")]
        assert main([*args, "--size", "64", "--temperature", t]) == 0
    # T=0.1: the orange mode (chroma 68 after gamut clipping); T=1.5: a mix near 42
    assert _chroma(tmp_path / "0.1") > _chroma(tmp_path / "1.5") + 15
    assert Colorizer.from_pretrained(tmp_path / "m", temperature=0.2).G.temperature == 0.2
    assert Colorizer.from_pretrained(tmp_path / "m").G.temperature == 0.38  # calibrated value
    # out of range, and models without classes, are one-line usage errors
    assert main([*args, "--temperature", "9"]) == 2
    assert "out of range" in capsys.readouterr().err
    save_pretrained(MobileNetUNet(), tmp_path / "reg")
    args = ["colorize", str(gray), "-o", str(tmp_path / "r"), "--model", str(tmp_path / "reg")]
    assert main([*args, "--temperature", "0.3"]) == 2
    assert "only to models that predict colour classes" in capsys.readouterr().err


def test_colorize_gain_sets_how_bold_an_l1_models_colour_is(tmp_path, capsys):
    from PIL import Image

    from pix2color.inference.colorizer import Colorizer
    from tests.conftest import real_photo

    G = MobileNetUNet().eval()
    with torch.no_grad():  # every pixel the same pale orange
        G.head[0].weight.zero_()
        G.head[0].bias.copy_(torch.tensor([0.1, 0.15]))
    G.set_ab_gain(1.5)  # as if calibrated
    save_pretrained(G, tmp_path / "m")
    gray = tmp_path / "grey.png"
    Image.fromarray(real_photo("chelsea")[::4, ::4]).convert("L").save(gray)

    base = ["colorize", str(gray), "--model", str(tmp_path / "m"), "--size", "64"]
    for g in ("0.5", "2"):
        assert main([*base, "-o", str(tmp_path / g), "--gain", g]) == 0
    assert main([*base, "-o", str(tmp_path / "calibrated")]) == 0
    low, high, calibrated = (_chroma(tmp_path / g) for g in ("0.5", "2", "calibrated"))
    assert low < calibrated < high and high > 3 * low  # chroma grows with the gain
    assert Colorizer.from_pretrained(tmp_path / "m").G.ab_gain == 1.5
    assert Colorizer.from_pretrained(tmp_path / "m", gain=1.7).G.ab_gain == 1.7
    assert main([*base, "-o", str(tmp_path / "x"), "--gain", "9"]) == 2
    assert "out of range" in capsys.readouterr().err
    Gc = MobileNetClassUNet(n_bins=4).eval()
    save_pretrained(Gc, tmp_path / "classes")
    args = ["colorize", str(gray), "-o", str(tmp_path / "c"), "--model", str(tmp_path / "classes")]
    assert main([*args, "--gain", "1.2"]) == 2
    assert "use --temperature" in capsys.readouterr().err
