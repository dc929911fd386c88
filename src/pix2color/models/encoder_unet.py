"""U-Nets whose encoder is an ImageNet-trained network and whose decoder is light.

The encoder is MobileNetV2 (the default, models/mobilenet.py) or EfficientNet-Lite0/1/2
(models/efficientnet.py), chosen by the constructor argument `encoder` (one of ENCODERS) and
saved in the config like every argument; configs saved before it existed hold no `encoder` and
load as MobileNetV2. The classes keep their MobileNet names because the architecture names saved
with every model ("mobilenet_unet", "mobilenet_classes") and every import use them.

Two heads, two classes:
- `MobileNetUNet` regresses ab directly (tanh), times a calibrated gain (its colour setting);
- `MobileNetClassUNet` predicts a distribution over quantised ab bins and decodes it with the
  annealed mean at a calibrated temperature (its colour setting; see ab_classes.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2color.color.classes import ab_bin_centres, annealed_mean
from pix2color.color.lab import IMAGENET_MEAN, IMAGENET_STD
from pix2color.errors import UsageError
from pix2color.guide.maps import POINT_CHANNELS, REFERENCE_VALUES, classical_difference
from pix2color.guide.propagate import PULL
from pix2color.models import efficientnet, mobilenet
from pix2color.models.base import Generator, pad_to_multiple, saves_config
from pix2color.models.color_settings import check_gain, check_temperature
from pix2color.models.efficientnet import EfficientNetLite
from pix2color.models.mobilenet import FEATURES, MobileNetV2

ENCODERS = ("mobilenet_v2", *efficientnet.VARIANTS)  # the `encoder` argument; model.encoder
# MobileNetV2 stages whose outputs are the skips, at strides 2, 4, 8, 16 and 32
SKIP_STAGES = (1, 3, 6, 13, 18)
SKIP_CHANNELS = (16, 24, 32, 96, FEATURES)
DECODER_CHANNELS = (256, 256, 128, 64, 32, 16)  # widths at strides 32, 16, 8, 4, 2, 1
HINT_BASES = ("approx", "classical")  # HintUNet's colour with points before the refiner
SUMMARY_VALUES = 9  # summarise_points' values per photo
NONLOCAL_STRIDE, NONLOCAL_DIM = 4, 16  # HintUNet.nonlocal_shift's cells and feature size


def build_encoder(name: str, *, pretrained: bool) -> tuple[nn.Module, tuple[int, ...]]:
    """The encoder called `name` (one of ENCODERS) and the channels of its five skips."""
    if name == "mobilenet_v2":
        encoder = MobileNetV2()
        if pretrained:
            mobilenet.load_imagenet_weights(encoder)
        return encoder, SKIP_CHANNELS
    if name not in efficientnet.VARIANTS:
        raise UsageError(f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)}")
    encoder = EfficientNetLite(variant=name)
    if pretrained:
        efficientnet.load_imagenet_weights(encoder)
    return encoder, encoder.skip_channels


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _MobileNetDecoder(Generator):
    """The shared body: encoder, bottleneck and the first `steps` decoder steps.

    The encoder sees L as a grey RGB photo (mapped to [0, 1], repeated to 3 channels, then
    normalised as its ImageNet weights expect: ImageNet mean and std for MobileNetV2, [-1, 1]
    for EfficientNet-Lite). A 1x1 convolution reduces its 1280-channel stride-32 features to
    `decoder_channels[0]`; each decoder step then upsamples 2x (bilinear), joins the encoder
    features of that size (strides 16, 8, 4, 2, and finally L itself at full size) and applies
    a 3x3 conv + BatchNorm + ReLU. Sides that are not multiples of 32 are padded (edge
    replicated); the subclasses crop the output back.
    """

    factor = 32
    config_fixed = {"pretrained": False}  # trained weights replace ImageNet's when loaded

    def _build(
        self, decoder_channels: tuple[int, ...], encoder: str, pretrained: bool, steps: int
    ) -> None:
        assert len(decoder_channels) == 6, (
            f"decoder_channels needs 6 widths (strides 32, 16, 8, 4, 2, 1), "
            f"got {len(decoder_channels)}"
        )
        self.encoder, skip_channels = build_encoder(encoder, pretrained=pretrained)
        imagenet = encoder == "mobilenet_v2"
        mean = torch.tensor(IMAGENET_MEAN if imagenet else efficientnet.INPUT_MEAN)
        std = torch.tensor(IMAGENET_STD if imagenet else efficientnet.INPUT_STD)
        mean, std = mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)  # constants, not weights
        self.register_buffer("std", std, persistent=False)
        w = decoder_channels
        self.bottleneck = conv_bn_relu(skip_channels[-1], w[0], kernel=1)
        up_skips = (*skip_channels[-2::-1], 1)  # joined on the way up: strides 16 ... 2, then L
        self.ups = nn.ModuleList(conv_bn_relu(w[i] + up_skips[i], w[i + 1]) for i in range(steps))

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The ImageNet encoder's parameters (for a smaller learning rate)."""
        return list(self.encoder.parameters())

    def early_encoder_modules(self) -> list[nn.Module]:
        """The encoder's modules up to its stride-16 features (everything but its stride-32
        stages): what `train.train_encoder="late"` keeps frozen."""
        e = self.encoder
        if isinstance(e, EfficientNetLite):
            last16 = e.stage_ends[efficientnet.SKIP_STAGES[3]]
            return [e._conv_stem, e._bn0, *e._blocks[: last16 + 1]]
        return list(e.features[: SKIP_STAGES[3] + 1])

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the encoder."""
        ids = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised -> the encoder's features at strides 2, 4, 8, 16 and 32."""
        if isinstance(self.encoder, EfficientNetLite):
            return self.encoder.skips(x)
        skips = []
        for i, stage in enumerate(self.encoder.features):  # MobileNetV2's 19 stages
            x = stage(x)
            if i in SKIP_STAGES:
                skips.append(x)
        return skips

    def features(self, L: torch.Tensor, film: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H, W) -> decoder features of the padded photo after the last up step.

        `film` (B, 2 * w0): a scale and shift of the bottleneck's features (HintUNet's
        reference), as x * (1 + scale) + shift."""
        L = pad_to_multiple(L, self.factor)
        x = ((L + 1) / 2).expand(-1, 3, -1, -1)  # (B, 3, H, W) grey RGB in [0, 1]
        x = (x - self.mean) / self.std
        skips = self._encode(x)  # strides 2, 4, 8, 16, 32
        x = self.bottleneck(skips.pop())  # (B, w0, H/32, W/32)
        if film is not None:
            scale, shift = film[:, :, None, None].chunk(2, dim=1)
            x = x * (1 + scale) + shift
        skips = [L, *skips]  # full size first, stride 16 last
        for up in self.ups:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skips.pop()], dim=1))
        return x


class MobileNetUNet(_MobileNetDecoder):
    """L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1]: ab regressed at full size.

    A 1x1 convolution and tanh give ab, times `ab_gain` (1 unless calibrated: set_ab_gain),
    clipped to [-1, 1].
    """

    architecture = "mobilenet_unet"
    color_knob = "gain"

    @saves_config
    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        decoder_channels: tuple[int, ...] = DECODER_CHANNELS,
        encoder: str = "mobilenet_v2",
        pretrained: bool = False,
        ab_gain: float = 1.0,
    ) -> None:
        super().__init__()
        assert in_channels == 1, f"the encoder reads one L channel, got in_channels={in_channels}"
        self.ab_gain = 1.0
        self.set_ab_gain(ab_gain)
        self._build(decoder_channels, encoder, pretrained, steps=5)
        self.head = nn.Sequential(nn.Conv2d(decoder_channels[-1], out_channels, 1), nn.Tanh())

    def set_ab_gain(self, gain: float) -> None:
        """Scale ab by `gain` (clipped to [-1, 1]) from now on, and in the saved config.

        L1 regression averages uncertain colours towards grey; a gain chosen on validation
        photos (`pix2color calibrate`) gives back some of their colourfulness.
        """
        self.ab_gain = check_gain(gain) if gain != 1.0 else 1.0
        if self.ab_gain == 1.0:  # not saved: such configs stay as they were before gains existed
            self.config.pop("ab_gain", None)
        else:
            self.config["ab_gain"] = self.ab_gain

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1]."""
        h, w = L.shape[-2:]
        ab = self.head(self.features(L))[..., :h, :w]
        return ab if self.ab_gain == 1.0 else (ab * self.ab_gain).clamp(-1.0, 1.0)


class MobileNetClassUNet(_MobileNetDecoder):
    """L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1], through colour classes.

    The decoder stops at stride 4 and predicts logits over quantised ab bins (ab_classes.py);
    `forward` decodes them with the annealed mean at `temperature` and upsamples ab bilinearly
    to full size (colour varies slowly; L keeps the detail); `forward(L, return_logits=True)`
    also returns the logits for the class loss. The bin centres are a buffer saved with the
    weights; `n_bins=0` computes them (a fresh model).
    """

    architecture = "mobilenet_classes"
    color_knob = "temperature"

    @saves_config
    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        decoder_channels: tuple[int, ...] = DECODER_CHANNELS,
        encoder: str = "mobilenet_v2",
        pretrained: bool = False,
        n_bins: int = 0,
        temperature: float = 0.38,
    ) -> None:
        super().__init__()
        assert in_channels == 1, f"the encoder reads one L channel, got in_channels={in_channels}"
        self.temperature = check_temperature(temperature)
        bins = torch.zeros(n_bins, 2) if n_bins else ab_bin_centres()
        self.config["n_bins"] = len(bins)
        self._build(decoder_channels, encoder, pretrained, steps=3)  # strides 16, 8 joined
        self.register_buffer("bins", bins.float())
        self.head = nn.Conv2d(decoder_channels[3], len(bins), 1)

    def set_temperature(self, temperature: float) -> None:
        """The annealed-mean temperature, from now on and in the saved config."""
        self.temperature = self.config["temperature"] = check_temperature(temperature)

    def forward(
        self, L: torch.Tensor, return_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1] (and the bin logits)."""
        h, w = L.shape[-2:]
        logits = self.head(self.features(L))  # (B, Q, H/4, W/4) of the padded size
        ab = annealed_mean(logits, self.bins, self.temperature)
        ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
        ab = ab[..., :h, :w].to(L.dtype)
        if return_logits:
            return ab, logits[..., : -(-h // 4), : -(-w // 4)]
        return ab


class HintUNet(MobileNetUNet):
    """Guided colour: L (B, 1, H, W), point maps (B, 6, H, W) and a reference histogram
    (B, 65) (guidance.py) -> ab (B, 2, H, W) in [-1, 1]. One network for colour points, a
    reference photo and no guidance.

    The automatic MobileNetUNet runs unchanged and gives `auto`. The base colour with points is
    `base = "approx"`: the points' edge-aware spread over grey and its reach give the (near)
    classical propagation `(1 - reach) * auto + spread`; or `base = "classical"`: exactly the
    classical propagation of the points over `auto` (propagate.py's solve, on the CPU and
    without gradient, inside the forward pass; `base_pull` its pull back to automatic, lower
    reaching further). A small full-size refiner (3x3 convolutions on
    the decoder's last features, L, auto, the base and the point maps; `refine_layers` of them,
    the middle ones dilated 2, 4, ... to see further) adds a learned correction. With
    `point_summary`, what the points say about the whole photo (the mean over the patches of
    the truth's ab, the automatic ab and their difference, and how much of the photo the
    patches cover) goes through a small MLP into a bias of the refiner's first layer: the
    refiner can then act where no point reaches (e.g. "everything is bolder than the automatic
    colour"). With `nonlocal_points`, each point's colour change also reaches the cells that
    look like it, wherever they are (`nonlocal_shift`), as a further input of the refiner.
    The reference histogram goes through an MLP into a scale and shift of the
    bottleneck's features (FiLM). The last layers of the refiner and of both MLPs start at
    zero, so a fresh HintUNet made from an automatic model's weights (train.init_from) returns
    that model's colour without guidance and the classical propagation's with points (exactly,
    with base "classical"); training only has to learn what improves on them.
    """

    architecture = "hint_unet"
    takes_guidance = True

    @saves_config
    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        decoder_channels: tuple[int, ...] = DECODER_CHANNELS,
        encoder: str = "mobilenet_v2",
        pretrained: bool = False,
        ab_gain: float = 1.0,
        refine_channels: int = 32,
        reference_hidden: int = 64,
        base: str = "approx",
        base_pull: float = PULL,
        refine_layers: int = 2,
        point_summary: bool = False,
        nonlocal_points: bool = False,
    ) -> None:
        # the automatic model's body, without its @saves_config (which would replace this config)
        MobileNetUNet.__init__.__wrapped__(
            self, in_channels=in_channels, out_channels=out_channels,
            decoder_channels=decoder_channels, encoder=encoder, pretrained=pretrained,
            ab_gain=ab_gain,
        )  # fmt: skip
        if base not in HINT_BASES:
            raise UsageError(f"HintUNet base={base!r}: choose one of {', '.join(HINT_BASES)}")
        if refine_layers < 2:
            raise UsageError(f"HintUNet refine_layers={refine_layers}: at least 2")
        if not base_pull > 0:
            raise UsageError(f"HintUNet base_pull={base_pull}: must be above 0")
        self.base, self.base_pull = base, base_pull
        w = refine_channels
        # features, L, auto, hints (and the classical base)
        cin = decoder_channels[-1] + 1 + out_channels + POINT_CHANNELS
        cin += out_channels if base == "classical" else 0
        layers: list[nn.Module] = [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(inplace=True)]
        for i in range(refine_layers - 2):
            d = 2 ** (i + 1)
            layers += [nn.Conv2d(w, w, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
        last = nn.Conv2d(w, out_channels, 3, padding=1)
        # no BatchNorm: guided and unguided crops differ too much within a batch
        self.refine = nn.Sequential(*layers, last)
        film = nn.Linear(reference_hidden, 2 * decoder_channels[0])
        self.reference_mlp = nn.Sequential(
            nn.Linear(REFERENCE_VALUES, reference_hidden), nn.ReLU(inplace=True), film
        )
        zeroed = [last, film]  # the start is the automatic model (and the classical spread)
        self.summary_mlp = None
        if point_summary:
            to_bias = nn.Linear(reference_hidden, w)
            self.summary_mlp = nn.Sequential(
                nn.Linear(SUMMARY_VALUES, reference_hidden), nn.ReLU(inplace=True), to_bias
            )
            zeroed.append(to_bias)
        self.point_query = None
        if nonlocal_points:  # see nonlocal_shift
            self.point_query = nn.Conv2d(decoder_channels[-1] + 1, NONLOCAL_DIM, 1)
            self.point_scale = nn.Parameter(torch.tensor(NONLOCAL_DIM**-0.5))
            self.point_null = nn.Parameter(torch.zeros(()))
            self.nonlocal_in = nn.Conv2d(out_channels, w, 3, padding=1)
            zeroed.append(self.nonlocal_in)
        for layer in zeroed:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        L: torch.Tensor,
        hints: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L (B, 1, H, W) in [-1, 1], hints (B, 6, H, W) or None (no points), reference (B, 65)
        or None -> ab (B, 2, H, W) in [-1, 1]."""
        B, _, h, w = L.shape
        if hints is None:
            hints = L.new_zeros(B, POINT_CHANNELS, h, w)
        if reference is None:
            reference = L.new_zeros(B, REFERENCE_VALUES)
        feats = self.features(L, film=self.reference_mlp(reference))[..., :h, :w]
        auto = self.head(feats)
        if self.ab_gain != 1.0:
            auto = (auto * self.ab_gain).clamp(-1.0, 1.0)
        inputs = [feats, L, auto, hints]
        if self.base == "classical":  # (B, 2, H, W): exactly the classical propagation
            base = auto + classical_difference(L, hints, auto, self.base_pull)
            inputs.append(base)
        else:  # about the classical propagation
            spread, reach = hints[:, 0:2], hints[:, 2:3]
            base = (1 - reach) * auto + spread
        x = self.refine[0](torch.cat(inputs, dim=1))
        if self.summary_mlp is not None:
            x = x + self.summary_mlp(summarise_points(hints, auto))[:, :, None, None]
        if self.point_query is not None:
            x = x + self.nonlocal_in(self.nonlocal_shift(feats, L, hints, auto))
        return (base + self.refine[1:](x)).clamp(-1.0, 1.0)

    def nonlocal_shift(
        self, feats: torch.Tensor, L: torch.Tensor, hints: torch.Tensor, auto: torch.Tensor
    ) -> torch.Tensor:
        """The points' colour change carried by likeness rather than by edges (B, 2, H, W).

        On a grid of NONLOCAL_STRIDE-pixel cells, every cell compares a learned projection of
        its features (the decoder's last features and L) with that of each cell a point covers,
        and takes the softmax-weighted mean of those cells' change (truth minus automatic ab);
        a learned "no match" logit lets a cell that resembles no point take nearly none. So a
        point on one sleeve can reach the other sleeve beyond the arm, which the edge-aware
        propagation cannot. Photos without points get zeros."""
        s = NONLOCAL_STRIDE
        on = hints[:, 5:6]
        share = F.avg_pool2d(on, s, ceil_mode=True)  # (B, 1, h, w): patch pixels per cell
        change = F.avg_pool2d((hints[:, 3:5] - auto) * on, s, ceil_mode=True)
        change = change / share.clamp(min=1e-6)  # the mean change over a cell's patch pixels
        q = self.point_query(F.avg_pool2d(torch.cat([feats, L], 1), s, ceil_mode=True))
        B, d, h, w = q.shape
        out = q.new_zeros(B, 2, h * w)
        for b in range(B):
            keys = share[b, 0].flatten() > 0
            if not keys.any():
                continue
            qb = q[b].flatten(1)  # (d, n)
            logits = (qb.T @ qb[:, keys]) * self.point_scale  # (n, k)
            null = self.point_null.expand(logits.shape[0], 1)
            weights = torch.softmax(torch.cat([logits, null], 1), 1)[:, :-1]
            out[b] = change[b].flatten(1)[:, keys] @ weights.T  # (2, n)
        out = out.view(B, 2, h, w)
        return F.interpolate(out, scale_factor=s, mode="bilinear", align_corners=False)[
            ..., : L.shape[-2], : L.shape[-1]
        ]


def summarise_points(hints: torch.Tensor, auto: torch.Tensor) -> torch.Tensor:
    """(B, SUMMARY_VALUES): over each photo's patches (hint channel 5), the mean of the truth's
    ab, of the automatic ab and of their difference, the mean chroma of each, and the share of
    the photo the patches cover (sqrt); all 0 for a photo without points."""
    mask = hints[:, 5:6]
    n = mask.sum(dim=(2, 3))  # (B, 1)
    safe = n.clamp(min=1.0)
    target, auto_on = hints[:, 3:5], auto * mask

    def mean(x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3)) / safe

    chroma = mean(target.norm(dim=1, keepdim=True)), mean(auto_on.norm(dim=1, keepdim=True))
    cover = (n / mask[0, 0].numel()).sqrt()
    return torch.cat([mean(target), mean(auto_on), mean(target - auto_on), *chroma, cover], 1)
