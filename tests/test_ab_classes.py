"""Colour as classes: the bins, the soft targets and rebalancing, the class head, calibration."""

from __future__ import annotations

import json

import pytest
import torch

from pix2color.ab_classes import (
    ColourClassLoss,
    ab_bin_centres,
    ab_prior,
    annealed_mean,
    rebalancing_weights,
)
from pix2color.calibrate import choose_temperature, sweep_temperature, val_loader
from pix2color.cli import main
from pix2color.color import AB_SCALE, rgb_to_lab_t
from pix2color.models.encoder_unet import MobileNetUNet
from pix2color.models.io import load_generator, save_pretrained
from pix2color.models.patchgan import PatchDiscriminator
from pix2color.train import fit, init_generator, train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return ab_bin_centres()


@pytest.fixture(scope="module")
def G(bins) -> MobileNetUNet:
    # n_bins given: the centres come from the state dict, as for a loaded model
    G = MobileNetUNet(head="classes", n_bins=len(bins))
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
    grey = torch.cdist(torch.zeros(1, 2), bins).argmin()
    prior[grey] = 0.9
    prior[0] = 0.1
    w = rebalancing_weights(prior, bins, mix=0.5)
    assert w[grey] < w[0] < w.max()
    uniform = rebalancing_weights(torch.full((len(bins),), 1 / len(bins)), bins)
    assert uniform.mean() == pytest.approx(1, abs=0.05)  # mean weight 1 (edges smooth a bit less)
    none = rebalancing_weights(prior, bins, mix=1.0)
    assert torch.allclose(none, torch.ones_like(none), atol=1e-5)  # mix=1: no rebalancing


def test_prior_counts_nearest_bins(bins):
    px = torch.tensor([[0.0, 0.0], [1.0, -2.0], [41.0, 59.0]])
    p = ab_prior(px, bins)
    grey = torch.cdist(torch.zeros(1, 2), bins).argmin()
    assert p[grey] == pytest.approx(2 / 3)
    assert p.sum() == pytest.approx(1)


def test_class_loss_is_lowest_for_the_true_colour(bins):
    loss = ColourClassLoss(bins, torch.ones(len(bins)))
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
    assert cfg["head"] == "classes" and cfg["n_bins"] == len(G.bins) and cfg["temperature"] == 0.3
    G2, _ = load_generator(tmp_path / "m")
    assert torch.equal(G2.bins, G.bins) and G2.temperature == 0.3
    L = torch.rand(1, 1, 40, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(G2(L), G(L), atol=1e-6)
    G.temperature = G.config["temperature"] = 0.38


def test_train_step_with_class_loss_learns_a_colour(bins):
    torch.manual_seed(0)
    G = MobileNetUNet(head="classes", n_bins=len(bins), decoder_channels=(32, 32, 16, 16, 8, 8))
    G.bins.copy_(bins)
    loss = ColourClassLoss(bins, torch.ones(len(bins)))
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
    G = MobileNetUNet(head="classes", n_bins=len(bins))
    fresh = init_generator(G, tmp_path / "warm")
    assert "head.weight" in fresh and "bins" in fresh
    assert not any(k.startswith(("encoder.", "bottleneck.", "ups.0", "ups.2")) for k in fresh)
    assert torch.equal(
        G.encoder.features[3].conv[0][0].weight, src.encoder.features[3].conv[0][0].weight
    )


def test_temperature_sweep_and_choice(G, photo_root):
    loader = val_loader(photo_root, size=64)
    rows = sweep_temperature(G, loader, torch.device("cpu"), (0.2, 1.0))
    assert [r["temperature"] for r in rows] == [0.2, 1.0]
    assert G.temperature == 0.38  # restored
    assert {"cf", "cf_truth", "dcf", "psnr", "psnr_grey"} <= set(rows[0])
    row = dict(psnr=22.0, psnr_grey=21.0)
    rows = [{"temperature": 0.3, "dcf": 4.0, **row}, {"temperature": 0.5, "dcf": 1.0, **row},
            {"temperature": 1.0, "dcf": 1.0, **row}]  # fmt: skip
    assert choose_temperature(rows)["temperature"] == 1.0  # ties go to the safer, higher T
    rows[1]["dcf"] = 0.5
    rows[1]["psnr"] = 20.0  # below the grey input: not a fair choice however vivid
    assert choose_temperature(rows)["temperature"] == 1.0
    for r in rows:
        r["psnr"] = 20.0 + r["temperature"]  # none beats grey: the best PSNR wins
    assert choose_temperature(rows)["temperature"] == 1.0


def test_regression_model_has_no_temperature(photo_root):
    with pytest.raises(ValueError, match="class head"):
        sweep_temperature(MobileNetUNet(), val_loader(photo_root, 32), torch.device("cpu"))


def test_fit_with_class_head_calibrates_the_best_model(tiny_config, tmp_path, capsys):
    cfg = tiny_config(
        'model.generator="mobilenet_unet"', "model.pretrained=false", 'model.head="classes"',
        "train.lambda_l1=0", "train.lambda_class=1", "train.epochs=1", "data.crop=32",
    )  # fmt: skip
    summary = fit(cfg, tmp_path / "run", progress=False)
    assert summary["temperature"] in (0.2, 0.25, 0.3, 0.35, 0.38, 0.45, 0.55, 0.7, 1.0)
    info = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert info["config"]["temperature"] == summary["temperature"]
    assert len(info["metadata"]["temperature_calibration"]["sweep"]) == 9
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "loss_g_class" in header and "dcf" in header
    # the CLI re-calibrates into another folder and prints the sweep
    model, cal = str(tmp_path / "run" / "model"), str(tmp_path / "cal")
    code = main(["calibrate", model, "--data", str(cfg.data.root), "--temperatures", "0.3,0.6",
                 "--size", "32", "-o", cal])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "| 0.3 |" in out and "chose temperature" in out
    assert json.loads((tmp_path / "cal" / "config.json").read_text())["config"]["temperature"] in (
        0.3, 0.6,
    )  # fmt: skip


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


def test_calibrate_cli_refuses_a_regression_model(tmp_path, photo_root, capsys):
    save_pretrained(MobileNetUNet(), tmp_path / "reg")
    assert main(["calibrate", str(tmp_path / "reg"), "--data", str(photo_root)]) == 2
    assert "no temperature" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "reg"), "--temperatures", "x"]) == 2
    assert "--temperatures" in capsys.readouterr().err
