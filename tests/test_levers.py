"""The study's training levers (issue 12): old-print ageing of the grey input, the feature
(perceptual) term, and how much of the pretrained encoder learns."""

import numpy as np
import pytest
import torch

from pix2color.data.dataset import RandomCrops, old_print
from pix2color.train import fit
from pix2color.train.checkpoint import load_checkpoint
from pix2color.train.config import ConfigError
from pix2color.train.feature_loss import FeatureLoss
from tests.conftest import real_photo

ENCODER_RUN = (
    "model.generator=mobilenet_unet",
    "model.pretrained=false",
    "data.crop=64",
    "data.load_short_side=64",
    "train.epochs=1",
)


def test_old_print_ages_the_grey_input_within_range_and_repeatably():
    L = torch.linspace(-1, 1, 64 * 64).view(1, 64, 64)
    a = old_print(L, np.random.default_rng(3))
    b = old_print(L, np.random.default_rng(3))
    assert a.shape == L.shape and a.dtype == torch.float32
    assert torch.equal(a, b)  # the same generator state, the same damage (resumable runs)
    assert a.min() >= -1 and a.max() <= 1
    changed = [not torch.equal(old_print(L, np.random.default_rng(s)), L) for s in range(8)]
    assert sum(changed) >= 6  # nearly every draw does something


def test_degraded_crops_change_the_input_never_the_colour_target():
    photos = [real_photo("astronaut")]
    clean = RandomCrops(photos, crop=64, seed=1)
    aged = RandomCrops(photos, crop=64, seed=1, degrade=1.0)
    ages = 0
    for i in range(4):
        clean.set_epoch(i)
        aged.set_epoch(i)
        (L0, ab0), (L1, ab1) = clean[0], aged[0]
        assert torch.equal(ab0, ab1)
        ages += not torch.equal(L0, L1)
    assert ages >= 3


def test_degrade_is_checked():
    from pix2color.train.config import DataConfig

    with pytest.raises(ConfigError, match="data.degrade"):
        DataConfig(degrade=1.5)


def test_feature_loss_is_zero_for_the_truth_and_teaches_the_colour():
    torch.manual_seed(0)
    loss = FeatureLoss(pretrained=False)
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    ab = (torch.rand(2, 2, 32, 32) - 0.5) * 0.6
    assert loss(L, ab, ab).item() == pytest.approx(0.0, abs=1e-6)
    fake = torch.zeros_like(ab, requires_grad=True)
    value = loss(L, fake, ab)
    assert value.item() > 0
    value.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())  # never trained itself
    loss.train()
    assert not loss.training  # its BatchNorm keeps ImageNet's statistics


def test_a_run_with_the_feature_term_logs_it(tiny_config, tmp_path):
    fit(tiny_config(*ENCODER_RUN, "train.lambda_feat=5"), tmp_path / "r", progress=False)
    history = load_checkpoint(tmp_path / "r" / "last.pt")["history"]
    assert history[0]["loss_g_feat"] > 0
    assert "loss_g_feat" in (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("part", ["none", "late"])
def test_a_frozen_encoder_part_keeps_its_weights_and_statistics(tiny_config, tmp_path, part):
    from pix2color.models.encoder_unet import SKIP_STAGES
    from pix2color.train.setup import build_models

    cfg = tiny_config(*ENCODER_RUN, f"train.train_encoder={part!r}", "train.lr_encoder=5e-5")
    torch.manual_seed(cfg.train.seed)
    G0, _ = build_models(cfg.model)
    fit(cfg, tmp_path / "r", progress=False)
    after = load_checkpoint(tmp_path / "r" / "last.pt")["G"]
    before = G0.state_dict()
    last_frozen = SKIP_STAGES[3]  # "late": stages up to stride 16 stay

    def frozen(key):
        if not key.startswith("encoder."):
            return False
        return part == "none" or int(key.split(".")[2]) <= last_frozen

    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any(frozen(k) for k in changed)  # running stats included
    assert any(k.startswith("head.") for k in changed)
    if part == "late":
        assert any(k.startswith("encoder.features.18.") for k in changed)


def test_train_encoder_needs_an_encoder(tiny_config):
    with pytest.raises(ConfigError, match="train_encoder"):
        tiny_config("train.train_encoder='none'")
