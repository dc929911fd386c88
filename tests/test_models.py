import pytest
import torch

from pix2color.models.io import load_generator, save_pretrained
from pix2color.models.patchgan import GANLoss, PatchDiscriminator
from pix2color.models.unet import UNetGenerator


@pytest.mark.parametrize("h,w", [(32, 32), (37, 53), (1, 7), (130, 64)])
def test_generator_keeps_any_size_and_range(h, w):
    G = UNetGenerator(base_channels=8, depth=4, max_channels=16).eval()
    ab = G(torch.rand(2, 1, h, w) * 2 - 1)
    assert ab.shape == (2, 2, h, w)
    assert ab.abs().max() <= 1


def test_default_generator_is_the_reference_unet_256():
    G = UNetGenerator()  # 8 levels, 64..512 channels: the pix2pix reference's 54.4 M parameters
    assert sum(p.numel() for p in G.parameters()) == pytest.approx(54.4e6, rel=0.01)


def test_discriminator_sees_70x70_patches():
    D = PatchDiscriminator()
    assert D.receptive_field == 70
    assert D(torch.zeros(1, 1, 256, 256), torch.zeros(1, 2, 256, 256)).shape == (1, 1, 30, 30)


def test_gan_loss_targets():
    loss = GANLoss("vanilla")
    big = torch.full((1, 1, 4, 4), 20.0)
    assert loss(big, real=True) < 1e-6 and loss(big, real=False) > 10
    assert GANLoss("lsgan")(torch.ones(1, 1, 2, 2), real=True) == 0
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")


@pytest.mark.parametrize("half", [False, True])
def test_save_and_load_pretrained_round_trip(tmp_path, half):
    G = UNetGenerator(base_channels=8, depth=3, max_channels=16).eval()
    save_pretrained(G, tmp_path / "m", metadata={"note": "test"}, half=half)
    G2, info = load_generator(tmp_path / "m")
    assert info["metadata"] == {"note": "test"} and info["config"] == G.config
    x = torch.rand(1, 1, 24, 40) * 2 - 1
    assert torch.allclose(G(x), G2(x), atol=2e-3 if half else 0)


def test_unknown_model_name_lists_the_shipped_ones():
    from pix2color.models.io import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="neither a path nor a shipped model"):
        load_generator("no-such-model")
