"""A U-Net whose encoder is an ImageNet-trained MobileNetV2 and whose decoder is light."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2color.ab_classes import ab_bin_centres, annealed_mean
from pix2color.color import IMAGENET_MEAN, IMAGENET_STD
from pix2color.models.mobilenet import FEATURES, MobileNetV2, load_imagenet_weights

# MobileNetV2 stages whose outputs are the skips, at strides 2, 4, 8, 16 and 32
SKIP_STAGES = (1, 3, 6, 13, 18)
SKIP_CHANNELS = (16, 24, 32, 96, FEATURES)


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def check_ab_gain(gain: float) -> None:
    """Refuse an ab gain outside (0, 4] (1 = the network's own colour)."""
    if not 0 < gain <= 4:
        raise ValueError(f"ab_gain={gain}: use a factor above 0 and at most 4 (1 = unchanged)")


class MobileNetUNet(nn.Module):
    """L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1], any H and W.

    The encoder sees L as a grey RGB photo (mapped to [0, 1], repeated to 3 channels,
    ImageNet-normalised), which is what its ImageNet weights expect. A 1x1 convolution reduces
    its 1280-channel stride-32 features to `decoder_channels[0]`; each decoder step then
    upsamples 2x (bilinear), joins the encoder features of that size (strides 16, 8, 4, 2, and
    finally L itself at full size) and applies a 3x3 conv + BatchNorm + ReLU. A 1x1 convolution
    and tanh give ab, times `ab_gain` (1 unless calibrated: see set_ab_gain), clipped to [-1, 1].
    Sides that are not multiples of 32 are padded (edge replicated) and the
    output is cropped back. `pretrained` loads the ImageNet weights into the encoder; the saved
    config always says `pretrained=False`, since trained weights are loaded over it anyway.

    With `head="classes"` the decoder stops at stride 4 and predicts logits over quantised ab
    bins (ab_classes.py); `forward` decodes them with the annealed mean at `temperature` and
    upsamples ab bilinearly to full size (colour varies slowly; L keeps the detail), and
    `forward(L, return_logits=True)` also returns the logits for the class loss. The bin
    centres are a buffer saved with the weights; `n_bins=0` computes them (a fresh model).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        decoder_channels: tuple[int, ...] = (256, 256, 128, 64, 32, 16),
        pretrained: bool = False,
        head: str = "regression",
        n_bins: int = 0,
        temperature: float = 0.38,
        ab_gain: float = 1.0,
    ) -> None:
        super().__init__()
        assert in_channels == 1, f"the encoder reads one L channel, got in_channels={in_channels}"
        assert len(decoder_channels) == 6, (
            f"decoder_channels needs 6 widths (strides 32, 16, 8, 4, 2, 1), "
            f"got {len(decoder_channels)}"
        )
        if head not in ("regression", "classes"):
            raise ValueError(f"head={head!r}: use 'regression' or 'classes'")
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: it must be above 0")
        bins = ab_bin_centres() if head == "classes" and not n_bins else torch.zeros(n_bins, 2)
        self.config = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            decoder_channels=list(decoder_channels),  # a list, as it comes back from JSON
            pretrained=False,  # rebuilding from the config must never need the ImageNet file
        )
        if head == "classes":  # older regression configs stay exactly as they were
            self.config.update(head=head, n_bins=len(bins), temperature=temperature)
        self.head_kind, self.temperature = head, temperature
        self.ab_gain = 1.0
        if ab_gain != 1.0:
            self.set_ab_gain(ab_gain)
        self.factor = 32
        self.encoder = MobileNetV2()
        if pretrained:
            load_imagenet_weights(self.encoder)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)  # constants, not weights
        self.register_buffer("std", std, persistent=False)

        w = decoder_channels
        self.bottleneck = conv_bn_relu(FEATURES, w[0], kernel=1)
        # skips joined on the way up: strides 16, 8, 4, 2, then L at stride 1
        up_skips = (*SKIP_CHANNELS[-2::-1], in_channels)
        if head == "classes":  # stop at stride 4: strides 16 and 8 joined, then the bin logits
            self.ups = nn.ModuleList(conv_bn_relu(w[i] + up_skips[i], w[i + 1]) for i in range(3))
            self.register_buffer("bins", bins.float())
            self.head = nn.Conv2d(w[3], len(bins), 1)
        else:
            self.ups = nn.ModuleList(
                conv_bn_relu(w[i] + skip, w[i + 1]) for i, skip in enumerate(up_skips)
            )
            self.head = nn.Sequential(nn.Conv2d(w[-1], out_channels, 1), nn.Tanh())

    def set_ab_gain(self, gain: float) -> None:
        """Scale a regression head's ab by `gain` (clipped to [-1, 1]) from now on, and in the
        saved config: L1 regression averages uncertain colours towards grey, and a gain chosen
        on validation photos (`pix2color calibrate`) gives back some of their colourfulness.
        """
        if self.head_kind != "regression":
            raise ValueError("only a regression head has an ab gain (a class head: temperature)")
        check_ab_gain(gain)
        self.ab_gain = float(gain)
        if self.ab_gain == 1.0:  # configs without a gain stay exactly as they were
            self.config.pop("ab_gain", None)
        else:
            self.config["ab_gain"] = self.ab_gain

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The MobileNetV2 encoder's parameters (for a smaller learning rate)."""
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the encoder."""
        ids = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def forward(
        self, L: torch.Tensor, return_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1] (and the bin logits)."""
        h, w = L.shape[-2:]
        ph, pw = (-h) % self.factor, (-w) % self.factor
        L = F.pad(L, (0, pw, 0, ph), mode="replicate") if ph or pw else L
        x = ((L + 1) / 2).expand(-1, 3, -1, -1)  # (B, 3, H, W) grey RGB in [0, 1]
        x = (x - self.mean) / self.std
        skips = []
        for i, stage in enumerate(self.encoder.features):
            x = stage(x)
            if i in SKIP_STAGES:
                skips.append(x)
        x = self.bottleneck(skips.pop())  # (B, w0, H/32, W/32)
        skips = [L, *skips]  # full size first, stride 16 last
        for up in self.ups:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skips.pop()], dim=1))
        if self.head_kind == "regression":
            ab = self.head(x)[..., :h, :w]
            return ab if self.ab_gain == 1.0 else (ab * self.ab_gain).clamp(-1.0, 1.0)
        logits = self.head(x)  # (B, Q, H/4, W/4) of the padded size
        ab = annealed_mean(logits, self.bins, self.temperature)
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
        ab = ab[..., :h, :w].to(L.dtype)
        if return_logits:
            return ab, logits[..., : -(-h // 4), : -(-w // 4)]
        return ab
